"""CWE catalog parser for MITRE's XML (schema cwe-7, CWE 4.x): the file cwe2 ships or an official
cwec_vX.Y.xml / cwec_latest.xml.zip release. Streams with iterparse and clears each entry, so the
15 MB catalog parses in a few seconds with little memory.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from cyberslm.errors import CyberslmError
from cyberslm.io import open_text
from cyberslm.knowledge.model import (
    Consequence,
    Entry,
    MitigationNote,
    RelatedWeakness,
    Relationship,
    Weakness,
)
from cyberslm.knowledge.store import Bundle

BLOCK_TAGS = {"p", "div", "li", "ul", "ol", "br", "tr", "table", "pre", "h1", "h2", "h3", "h4"}


def cwe_url(number: str) -> str:
    return f"https://cwe.mitre.org/data/definitions/{number}.html"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def flatten(el: ET.Element | None) -> str:
    """XHTML-structured text to plain text: one line per block element, '- ' for list items."""
    if el is None:
        return ""
    parts: list[str] = []

    def walk(e: ET.Element) -> None:
        tag = _local(e.tag)
        block = tag in BLOCK_TAGS
        if block:
            parts.append("\n- " if tag == "li" else "\n")
        parts.append((e.text or "").replace("\n", " "))  # source line breaks are layout, not structure
        for child in e:
            walk(child)
            parts.append((child.tail or "").replace("\n", " "))
        if block:
            parts.append("\n")

    walk(el)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line and line != "-")


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _texts(el: ET.Element, name: str) -> list[str]:
    return [flatten(c) for c in _children(el, name)]


def _weakness(el: ET.Element, source: str) -> Weakness:
    num = el.get("ID", "")
    group = {_local(c.tag): c for c in el}
    consequences = [
        Consequence(_texts(c, "Scope"), _texts(c, "Impact"), flatten(_child(c, "Note")))
        for c in _children(group["Common_Consequences"], "Consequence")
    ] if "Common_Consequences" in group else []
    mitigations = [
        MitigationNote(_texts(m, "Phase"), flatten(_child(m, "Description")))
        for m in _children(group["Potential_Mitigations"], "Mitigation")
    ] if "Potential_Mitigations" in group else []
    related = [
        RelatedWeakness(r.get("Nature", ""), f"CWE-{r.get('CWE_ID')}", r.get("View_ID", ""))
        for r in group.get("Related_Weaknesses", ())
    ]
    capec = [f"CAPEC-{r.get('CAPEC_ID')}" for r in group.get("Related_Attack_Patterns", ())]
    examples = [
        {"reference": flatten(_child(x, "Reference")), "description": flatten(_child(x, "Description"))}
        for x in group.get("Observed_Examples", ())
    ]
    aliases = [flatten(_child(t, "Term")) for t in group.get("Alternate_Terms", ())]
    notes = group.get("Mapping_Notes")
    return Weakness(
        id=f"CWE-{num}", name=el.get("Name", ""), description=flatten(group.get("Description")),
        url=cwe_url(num), aliases=[a for a in aliases if a], source=source,
        abstraction=el.get("Abstraction", ""), status=el.get("Status", ""),
        extended_description=flatten(group.get("Extended_Description")),
        consequences=consequences, mitigations=mitigations, related=related, capec_ids=capec,
        observed_examples=examples, mapping_usage=flatten(_child(notes, "Usage")) if notes is not None else "",
    )


def _group_entry(el: ET.Element, kind: str, source: str) -> tuple[Entry, list[str]]:
    """A category or view: its summary/objective, and the members it lists."""
    num = el.get("ID", "")
    text = flatten(_child(el, "Summary") if kind == "cwe-category" else _child(el, "Objective"))
    members_el = _child(el, "Relationships") if kind == "cwe-category" else _child(el, "Members")
    members = [f"CWE-{m.get('CWE_ID')}" for m in (members_el if members_el is not None else ())]
    entry = Entry(id=f"CWE-{num}", kind=kind, name=el.get("Name", ""), description=text,
                  url=cwe_url(num), source=source, extra={"status": el.get("Status", "")})
    return entry, members


def _relationships(w: Weakness) -> list[Relationship]:
    rels, seen = [], set()
    for r in w.related:
        nature = "".join("-" + c.lower() if c.isupper() else c for c in r.nature).lstrip("-")  # ChildOf -> child-of
        if (nature, r.cwe_id) not in seen:
            seen.add((nature, r.cwe_id))
            rels.append(Relationship(w.id, nature, r.cwe_id, f"view CWE-{r.view_id}"))
    rels += [Relationship(w.id, "related-attack-pattern", c) for c in w.capec_ids]
    return rels


def parse_cwe_xml(path: str | Path) -> Bundle:
    """Parse a CWE catalog (.xml or .zip) into weaknesses, categories and views with their links."""
    path = Path(path)
    bundle = Bundle("cwe", "CWE")
    kinds = {"Weakness": "cwe", "Category": "cwe-category", "View": "cwe-view"}
    depth = 0
    try:
        with open_text(path) as fh:
            for event, el in ET.iterparse(fh, events=("start", "end")):
                tag = _local(el.tag)
                if event == "start":
                    if depth == 0:
                        if tag != "Weakness_Catalog":
                            raise CyberslmError(f"{path}: not a CWE catalog (root element <{tag}>)")
                        bundle.source = f"CWE {el.get('Version', '?')}"
                    depth += 1
                    continue
                depth -= 1
                if depth != 2 or tag not in kinds:
                    continue
                if not el.get("ID"):
                    raise CyberslmError(f"{path}: {tag} without an ID attribute (name {el.get('Name')!r})")
                if tag == "Weakness":
                    w = _weakness(el, bundle.source)
                    bundle.entries.append(w)
                    bundle.relationships += _relationships(w)
                else:
                    entry, members = _group_entry(el, kinds[tag], bundle.source)
                    bundle.entries.append(entry)
                    bundle.relationships += [Relationship(entry.id, "has-member", m) for m in members]
                el.clear()
    except ET.ParseError as exc:
        raise CyberslmError(f"{path}: malformed CWE XML ({exc})") from exc
    except (UnicodeDecodeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CyberslmError(f"{path}: unreadable CWE XML ({exc})") from exc
    if not bundle.entries:
        raise CyberslmError(f"{path}: no CWE weaknesses found")
    return bundle
