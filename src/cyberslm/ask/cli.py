def ask_command(question: str) -> None:
    """Ask (not built yet)."""
