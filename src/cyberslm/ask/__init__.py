"""Grounded answers to CTI questions over the local MITRE knowledge (`cyberslm ask`)."""

from cyberslm.ask.answerer import Answer, Source, answer

__all__ = ["Answer", "Source", "answer"]
