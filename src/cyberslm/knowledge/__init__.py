"""Offline MITRE knowledge (CWE, ATT&CK, CAPEC): `load_knowledge()` is the one entry point."""

from cyberslm.knowledge.base import Knowledge, load_knowledge
from cyberslm.knowledge.model import (
    Consequence,
    Entry,
    MitigationNote,
    RelatedWeakness,
    Relationship,
    Weakness,
)

__all__ = [
    "Consequence",
    "Entry",
    "Knowledge",
    "MitigationNote",
    "RelatedWeakness",
    "Relationship",
    "Weakness",
    "load_knowledge",
]
