def plan_command() -> None:
    """Not built yet."""
