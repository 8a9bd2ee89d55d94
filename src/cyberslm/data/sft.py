def sft_command() -> None:
    """Not built yet."""
