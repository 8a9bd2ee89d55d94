"""The `cyberslm` command: a thin layer over the stages. Each stage owns its commands in its own cli.py.

Stage cli modules import heavy libraries inside their commands only, so that `cyberslm triage`
starts fast.
"""

from __future__ import annotations

import sys

import typer

from cyberslm.ask.cli import ask_command
from cyberslm.data.cli import app as data_app
from cyberslm.errors import CyberslmError
from cyberslm.eval.cli import app as eval_app
from cyberslm.knowledge.cli import app as kb_app
from cyberslm.serve.cli import serve_command
from cyberslm.train.cli import app as train_app
from cyberslm.train.cli import export_app, plan_command
from cyberslm.triage import triage_command

cli = typer.Typer(
    name="cyberslm",
    help="Small local language models for defensive cybersecurity: knowledge, data, train, eval, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.add_typer(kb_app, name="kb", help="Offline MITRE knowledge: CWE, ATT&CK, CAPEC.")
cli.add_typer(data_app, name="data", help="Build labelled and SFT data sets from CVE feeds and knowledge.")
cli.add_typer(train_app, name="train", help="Train the CPU classifier or LoRA/QLoRA fine-tunes; merge adapters.")
cli.add_typer(export_app, name="export", help="Export a merged model (GGUF, Ollama Modelfile).")
cli.add_typer(eval_app, name="eval", help="CTI-Bench evaluation of any local model.")
cli.command("triage")(triage_command)
cli.command("ask")(ask_command)
cli.command("serve")(serve_command)
cli.command("plan")(plan_command)


def app() -> None:
    """Entry point: bad input is one line on stderr and exit status 2, never a traceback."""
    try:
        cli()  # standalone: typer prints usage errors itself and exits
    except CyberslmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app()
