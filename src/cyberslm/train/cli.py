"""`cyberslm train ...`, `cyberslm export ...` and `cyberslm plan`: each command lives in its own module."""

import typer

from cyberslm.train.classifier import classifier_command
from cyberslm.train.export import gguf_command
from cyberslm.train.merge import merge_command
from cyberslm.train.plan import plan_command
from cyberslm.train.sft import sft_command

app = typer.Typer(no_args_is_help=True)
app.command("classifier")(classifier_command)
app.command("sft")(sft_command)
app.command("merge")(merge_command)

export_app = typer.Typer(no_args_is_help=True)
export_app.command("gguf")(gguf_command)

__all__ = ["app", "export_app", "plan_command"]
