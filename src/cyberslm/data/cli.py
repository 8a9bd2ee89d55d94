import typer

from cyberslm.data.sft import sft_command

app = typer.Typer(no_args_is_help=True)
app.command("sft")(sft_command)
