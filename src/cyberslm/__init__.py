"""cyberslm: small, specialized, locally-runnable language models for defensive cybersecurity."""

__version__ = "0.1.0"
