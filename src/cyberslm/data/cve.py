"""The CVE record every reader yields, whatever the official format it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# NVD's placeholders are kept as-is and distinguishable from real weaknesses.
NVD_PLACEHOLDERS = ("NVD-CWE-Other", "NVD-CWE-noinfo")


@dataclass
class CweLabel:
    id: str  # "CWE-79", or an NVD placeholder
    type: str = ""  # "Primary" | "Secondary" | "" when the format does not say
    source: str = ""  # who assigned it (nvd@nist.gov, a CNA), when the format says

    @property
    def is_placeholder(self) -> bool:
        return self.id in NVD_PLACEHOLDERS


@dataclass
class CveRecord:
    id: str
    description: str  # English
    cwes: list[CweLabel] = field(default_factory=list)
    cvss_v3: str | None = None  # "CVSS:3.1/AV:N/..."
    published: str | None = None  # ISO 8601 date or datetime as the source gives it
    source_file: str = ""

    @property
    def real_cwes(self) -> list[str]:
        """Real CWE ids, primary first, without placeholders or duplicates."""
        ordered = sorted(self.cwes, key=lambda c: 0 if c.type == "Primary" else 1)
        out: list[str] = []
        for label in ordered:
            if not label.is_placeholder and label.id not in out:
                out.append(label.id)
        return out

    def to_dict(self) -> dict:
        return asdict(self)
