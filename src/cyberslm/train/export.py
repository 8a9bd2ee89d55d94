def gguf_command() -> None:
    """Not built yet."""
