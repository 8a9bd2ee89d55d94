def triage_command(text: list[str]) -> None:
    """Triage (not built yet)."""
