"""STIX 2.1 bundles from MITRE: ATT&CK (enterprise, mobile, ics) and CAPEC, one parser for both.

Objects are keyed by their MITRE external id (T1059.001, G0016, CAPEC-66); relationships between
STIX ids are rewritten to those ids. Revoked and deprecated objects are skipped unless asked for.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from cyberslm.errors import BadRecord, CyberslmError
from cyberslm.io import open_text
from cyberslm.knowledge.model import Entry, Relationship
from cyberslm.knowledge.store import Bundle

ATTACK_SOURCES = {"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"}
KINDS = {
    "attack-pattern": "technique",
    "x-mitre-tactic": "tactic",
    "course-of-action": "mitigation",
    "intrusion-set": "group",
    "malware": "software",
    "tool": "software",
    "campaign": "campaign",
    "x-mitre-data-source": "data-source",
    "x-mitre-data-component": "data-component",
    "x-mitre-detection-strategy": "detection",
    "x-mitre-analytic": "analytic",
    "x-mitre-asset": "asset",
}
RELATIONSHIPS = {"uses", "mitigates", "subtechnique-of", "detects", "attributed-to", "targets"}

_CITATION = re.compile(r"\s*\(Citation:[^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def clean_text(text: str | None) -> str:
    """MITRE markup to prose: drop '(Citation: ...)' and (x)html tags, keep link text only."""
    text = _TAG.sub("", _MD_LINK.sub(r"\1", _CITATION.sub("", text or "")))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def attack_url(ext_id: str, kind: str) -> str:
    if ext_id.startswith("CAPEC-"):
        return f"https://capec.mitre.org/data/definitions/{ext_id[6:]}.html"
    folder = {"technique": "techniques", "tactic": "tactics", "mitigation": "mitigations", "group": "groups",
              "software": "software", "campaign": "campaigns", "data-source": "datasources",
              "detection": "detectionstrategies", "asset": "assets"}.get(kind)
    return f"https://attack.mitre.org/{folder}/{ext_id.replace('.', '/')}/" if folder else ""


def _external_id(obj: dict, sources: set[str]) -> str:
    for ref in obj.get("external_references", ()):
        if ref.get("source_name") in sources and ref.get("external_id"):
            return ref["external_id"].upper()
    return ""


def _capec_entry(obj: dict, ext_id: str, source: str) -> Entry:
    cwes = [r["external_id"].upper() for r in obj.get("external_references", ())
            if r.get("source_name") == "cwe" and r.get("external_id")]
    extra = {
        "abstraction": obj.get("x_capec_abstraction", ""),
        "status": obj.get("x_capec_status", ""),
        "likelihood": obj.get("x_capec_likelihood_of_attack", ""),
        "severity": obj.get("x_capec_typical_severity", ""),
        "prerequisites": obj.get("x_capec_prerequisites", []),
        "consequences": obj.get("x_capec_consequences", {}),
        "cwe_ids": cwes,
        "mitigations": [],
    }
    desc = clean_text(obj.get("description", "") + "\n" + obj.get("x_capec_extended_description", ""))
    return Entry(ext_id, "capec", obj.get("name", ""), desc, attack_url(ext_id, "capec"),
                 source=source, extra={k: v for k, v in extra.items() if v or k == "mitigations"})


def _attack_entry(obj: dict, ext_id: str, kind: str, source: str) -> Entry:
    name = obj.get("name", "")
    aliases = obj.get("aliases") or obj.get("x_mitre_aliases") or []
    extra: dict = {}
    if kind == "technique":
        extra = {
            "tactics": [p["phase_name"] for p in obj.get("kill_chain_phases", ())
                        if p.get("kill_chain_name", "").startswith("mitre")],
            "platforms": obj.get("x_mitre_platforms", []),
            "is_subtechnique": bool(obj.get("x_mitre_is_subtechnique")),
            "detection": clean_text(obj.get("x_mitre_detection")),
            "data_sources": obj.get("x_mitre_data_sources", []),
        }
    elif kind == "tactic":
        extra = {"shortname": obj.get("x_mitre_shortname", "")}
    elif kind in ("software", "analytic"):
        extra = {"platforms": obj.get("x_mitre_platforms", [])}
    extra["domains"] = obj.get("x_mitre_domains", [])
    return Entry(ext_id, kind, name, clean_text(obj.get("description")), attack_url(ext_id, kind),
                 aliases=[a for a in aliases if a != name], source=source,
                 extra={k: v for k, v in extra.items() if v not in ("", [], None)})


def _source_name(objects: list[dict], capec: bool) -> str:
    for obj in objects:
        if obj.get("type") == "x-mitre-collection":
            return f"{obj.get('name', 'ATT&CK')} {obj.get('x_mitre_version', '')}".strip()
    if capec:
        versions = sorted({o["x_capec_version"] for o in objects if o.get("x_capec_version")})
        return f"CAPEC {versions[-1]}" if versions else "CAPEC"
    return "ATT&CK"


def load_bundle_json(path: str | Path) -> list[dict]:
    """The `objects` of a STIX bundle file (.json, .json.gz, .zip); one-line error if it is not one."""
    try:
        with open_text(path) as fh:
            data = json.load(fh)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CyberslmError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("type") != "bundle" or not isinstance(data.get("objects"), list):
        raise CyberslmError(f"{path}: not a STIX 2.1 bundle (expected an object with type 'bundle' and 'objects')")
    return data["objects"]


def parse_stix_bundle(path: str | Path, include_deprecated: bool = False) -> Bundle:
    """Parse an ATT&CK or CAPEC STIX 2.1 bundle into entries and id-keyed relationships."""
    objects = load_bundle_json(path)
    # ATT&CK techniques cite CAPEC too, so a bundle is CAPEC only when nothing in it has an ATT&CK id.
    capec = not any(r.get("source_name") in ATTACK_SOURCES for o in objects if isinstance(o, dict)
                    for r in o.get("external_references", ()))
    id_sources = {"capec"} if capec else ATTACK_SOURCES
    bundle = Bundle("capec" if capec else "attack", _source_name(objects, capec))
    by_stix: dict[str, Entry] = {}
    coa_text: dict[str, str] = {}  # CAPEC mitigations have no ids: they become text on the pattern
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise BadRecord(path, i, "STIX object is not a JSON object")
        kind = KINDS.get(obj.get("type", ""))
        if kind is None:
            continue
        if not obj.get("id"):
            raise BadRecord(path, i, f"{obj.get('type')} {obj.get('name', '')!r} has no id")
        if not include_deprecated and (obj.get("revoked") or obj.get("x_mitre_deprecated")
                                       or obj.get("x_capec_status") == "Deprecated"):
            continue
        ext_id = _external_id(obj, id_sources)
        if capec and kind == "mitigation":
            coa_text[obj["id"]] = obj.get("description", "")
            continue
        if not ext_id:
            if kind == "technique":
                raise BadRecord(path, i, f"attack-pattern {obj['id']} has no MITRE external id")
            continue
        entry = (_capec_entry(obj, ext_id, bundle.source) if capec
                 else _attack_entry(obj, ext_id, kind, bundle.source))
        by_stix[obj["id"]] = entry
        bundle.entries.append(entry)
        for ref in obj.get("x_mitre_analytic_refs", ()):  # detection strategy -> its analytics
            bundle.relationships.append(Relationship(ext_id, "has-analytic", ref))
        for ref in obj.get("x_capec_child_of_refs", ()):
            bundle.relationships.append(Relationship(ext_id, "child-of", ref))
        for cwe in entry.extra.get("cwe_ids", ()) if capec else ():
            bundle.relationships.append(Relationship(ext_id, "related-weakness", cwe))

    # Analytic and parent refs were recorded as STIX ids: resolve them now that all objects are known.
    resolved = []
    for r in bundle.relationships:
        if r.target_id.startswith(("x-mitre-analytic--", "attack-pattern--")):
            target = by_stix.get(r.target_id)
            if target is None:
                continue
            r = Relationship(r.source_id, r.type, target.id)
        resolved.append(r)
    bundle.relationships = resolved

    for obj in objects:
        if obj.get("type") != "relationship" or obj.get("relationship_type") not in RELATIONSHIPS:
            continue
        if not include_deprecated and (obj.get("revoked") or obj.get("x_mitre_deprecated")):
            continue
        src, dst = obj.get("source_ref", ""), obj.get("target_ref", "")
        if capec and src in coa_text and dst in by_stix:
            by_stix[dst].extra["mitigations"].append(coa_text[src])
        elif src in by_stix and dst in by_stix:
            bundle.relationships.append(Relationship(by_stix[src].id, obj["relationship_type"], by_stix[dst].id,
                                                     clean_text(obj.get("description"))))
    if not bundle.entries:
        raise CyberslmError(f"{path}: the bundle holds no ATT&CK or CAPEC objects")
    return bundle
