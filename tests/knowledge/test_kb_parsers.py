"""CWE XML and STIX 2.1 parsers on small fixtures in the official formats, good and broken."""

from __future__ import annotations

import gzip
import json
import zipfile

import pytest

from cyberslm.errors import CyberslmError
from cyberslm.knowledge.cwe import parse_cwe_xml
from cyberslm.knowledge.model import Weakness
from cyberslm.knowledge.stix import parse_stix_bundle

from .conftest import CWE_XML, attack_objects, bundle


def by_id(b):
    return {e.id: e for e in b.entries}


def test_cwe_weakness_fields(cwe_xml):
    b = parse_cwe_xml(cwe_xml)
    assert b.family == "cwe" and b.source == "CWE 9.9"
    w = by_id(b)["CWE-79"]
    assert isinstance(w, Weakness) and w.kind == "cwe"
    assert (w.name, w.abstraction, w.status) == ("Fixture Cross-site Scripting", "Base", "Stable")
    assert w.url == "https://cwe.mitre.org/data/definitions/79.html"
    assert w.extended_description == "XSS happens when:\n- Untrusted data enters the application.\n- Type 1: it is reflected."
    assert w.consequences[0].scopes == ["Access Control", "Confidentiality"]
    assert w.consequences[0].impacts == ["Bypass Protection Mechanism", "Read Application Data"]
    assert w.consequences[0].note == "Cookies can be stolen."
    assert w.mitigations[0].phases == ["Architecture and Design", "Implementation"]
    assert w.mitigations[0].description == "Use a vetted encoding library."
    assert [(r.nature, r.cwe_id, r.view_id) for r in w.related] == [
        ("ChildOf", "CWE-74", "1000"), ("ChildOf", "CWE-74", "1003"), ("PeerOf", "CWE-352", "1000")]
    assert w.capec_ids == ["CAPEC-63", "CAPEC-85"]
    assert w.observed_examples == [{"reference": "CVE-2021-25926", "description": "Reflected XSS in a search term."}]
    assert w.aliases == ["XSS"]
    assert (w.mapping_usage, by_id(b)["CWE-74"].mapping_usage) == ("", "Discouraged")
    rels = {(r.source_id, r.type, r.target_id) for r in b.relationships}
    assert ("CWE-79", "child-of", "CWE-74") in rels and ("CWE-79", "related-attack-pattern", "CAPEC-63") in rels
    assert ("CWE-990", "has-member", "CWE-79") in rels


def test_cwe_deprecated_categories_views(cwe_xml):
    entries = by_id(parse_cwe_xml(cwe_xml))
    assert entries["CWE-1"].status == "Deprecated"
    assert entries["CWE-990"].kind == "cwe-category" and "injection" in entries["CWE-990"].description
    assert entries["CWE-1000"].kind == "cwe-view"


def test_cwe_zip_like_mitre_publishes(tmp_path, cwe_xml):
    z = tmp_path / "cwec_latest.xml.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(cwe_xml, "cwec_v9.9.xml")
    assert [e.id for e in parse_cwe_xml(z).entries] == [e.id for e in parse_cwe_xml(cwe_xml).entries]


@pytest.mark.parametrize("text, message", [
    (CWE_XML[: len(CWE_XML) // 2], "malformed CWE XML"),
    ('<?xml version="1.0"?><catalog/>', "not a CWE catalog"),
])
def test_cwe_broken_files(tmp_path, text, message):
    path = tmp_path / "broken.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CyberslmError) as err:
        parse_cwe_xml(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_attack_bundle(attack_json):
    b = parse_stix_bundle(attack_json)
    assert b.family == "attack" and b.source == "Fixture ATT&CK 1.0"
    e = by_id(b)
    assert {k: e[k].kind for k in ("TA0002", "T1059", "T1059.001", "G9001", "S9001", "M1038", "C9001")} == {
        "TA0002": "tactic", "T1059": "technique", "T1059.001": "technique", "G9001": "group",
        "S9001": "software", "M1038": "mitigation", "C9001": "campaign"}
    ps = e["T1059.001"]
    assert ps.extra["tactics"] == ["execution"] and ps.extra["platforms"] == ["Windows"]
    assert ps.extra["is_subtechnique"] is True
    assert ps.extra["detection"] == "Monitor powershell.exe command lines."
    assert ps.extra["data_sources"] == ["Command: Command Execution"]
    assert ps.description == "Adversaries may abuse PowerShell commands."
    assert ps.url == "https://attack.mitre.org/techniques/T1059/001/"
    assert e["G9001"].aliases == ["Cozy Fixture", "UNC0000"]
    assert e["S9001"].aliases == ["FRAT"]
    assert "T1999" not in e  # revoked
    rels = {(r.source_id, r.type, r.target_id): r.description for r in b.relationships}
    assert rels[("G9001", "uses", "T1059.001")] == "FixtureBear used PowerShell."
    assert {("T1059.001", "subtechnique-of", "T1059"), ("M1038", "mitigates", "T1059.001"),
            ("G9001", "uses", "S9001"), ("C9001", "attributed-to", "G9001")} <= set(rels)
    assert not any("T1999" in k for k in rels)


def test_attack_bundle_keeps_revoked_on_request_and_reads_gzip(tmp_path):
    path = tmp_path / "enterprise-attack.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(bundle(attack_objects()), fh)
    b = parse_stix_bundle(path, include_deprecated=True)
    assert "T1999" in by_id(b)
    assert ("G9001", "uses", "T1999") in {(r.source_id, r.type, r.target_id) for r in b.relationships}


def test_capec_bundle(capec_json):
    b = parse_stix_bundle(capec_json)
    assert b.family == "capec" and b.source == "CAPEC 3.9"
    c = by_id(b)["CAPEC-66"]
    assert c.kind == "capec" and c.name == "SQL Injection"
    assert c.url == "https://capec.mitre.org/data/definitions/66.html"
    assert c.description == "This attack exploits SQL statements built from user input.\nCrafted input changes the query."
    assert (c.extra["likelihood"], c.extra["severity"]) == ("High", "High")
    assert c.extra["prerequisites"] == ["SQL queries built from user input."]
    assert c.extra["cwe_ids"] == ["CWE-89"]
    assert c.extra["mitigations"] == ["Use parameterized queries."]
    rels = {(r.source_id, r.type, r.target_id) for r in b.relationships}
    assert {("CAPEC-66", "related-weakness", "CWE-89"), ("CAPEC-66", "child-of", "CAPEC-248")} <= rels


@pytest.mark.parametrize("content, message", [
    ('{"type": "bundle", "objects": [', "not valid JSON"),
    ('[{"type": "attack-pattern"}]', "not a STIX 2.1 bundle"),
    ('{"hello": "world"}', "not a STIX 2.1 bundle"),
    (json.dumps(bundle([{"type": "attack-pattern", "name": "No Id"}])), "record 0: attack-pattern 'No Id' has no id"),
    (json.dumps(bundle([{"type": "attack-pattern", "id": "attack-pattern--9", "name": "X"}])), "record 0"),
])
def test_stix_broken_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CyberslmError) as err:
        parse_stix_bundle(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)
