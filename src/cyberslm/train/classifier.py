def classifier_command() -> None:
    """Not built yet."""
