def serve_command() -> None:
    """Serve (not built yet)."""
