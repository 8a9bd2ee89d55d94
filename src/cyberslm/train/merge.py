def merge_command() -> None:
    """Not built yet."""
