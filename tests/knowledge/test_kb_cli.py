"""`cyberslm kb ...` through the root CLI: show, search, import, info, and one-line errors."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from cyberslm import cli as root

runner = CliRunner()


def run(*args):
    result = runner.invoke(root.cli, ["kb", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def run_main(monkeypatch, capsys, *args):
    """The installed entry point (`cyberslm.cli:app`), which turns CyberslmError into exit 2."""
    monkeypatch.setattr(sys, "argv", ["cyberslm", "kb", *args])
    with pytest.raises(SystemExit) as exit_:
        root.app()
    return exit_.value.code, capsys.readouterr()


def test_show_cwe_panel_and_json(kb):
    out = run("show", "CWE-79")
    assert "Cross-site Scripting" in out and "Consequences" in out and "Mitigations" in out
    assert "CWE-74" in out and "CAPEC-63" in out and "mapping: Allowed" in out
    data = json.loads(run("show", "cwe-79", "--json"))
    assert data["id"] == "CWE-79" and data["parents"] == ["CWE-74"] and data["consequences"]
    assert data["mapping_usage"] == "Allowed"
    assert "mapping: Discouraged" in run("show", "CWE-20")
    assert any(r["type"] == "child-of" and r["target_id"] == "CWE-74" for r in data["related"])


def test_show_technique(kb):
    out = run("show", "T1059.001")
    assert "PowerShell" in out and "subtechnique-of" in out and "T1059" in out
    assert "https://attack.mitre.org/techniques/T1059/001/" in out


def test_search_table_and_json(kb):
    assert "CWE-89" in run("search", "sql injection", "--limit", "3")
    rows = json.loads(run("search", "sql injection", "--json"))
    assert rows[0]["id"] == "CWE-89" and rows[0]["kind"] == "cwe" and rows[0]["score"] > 0
    groups = json.loads(run("search", "cozy bear", "--kind", "group", "--json", "--limit", "2"))
    assert groups[0]["id"] == "G0016" and len(groups) <= 2


def test_import_and_info(home, cwe_xml, attack_json, capec_json):
    out = run("import", str(cwe_xml), str(attack_json), str(capec_json))
    assert "CWE 9.9: 5 entries" in out
    assert "Fixture ATT&CK 1.0: 7 entries" in out and "1 group" in out
    assert "CAPEC 3.9: 2 entries" in out
    info = json.loads(run("info", "--json"))
    assert {s["source"] for s in info["sources"]} >= {"CWE 4.14", "CWE 9.9", "Fixture ATT&CK 1.0", "CAPEC 3.9"}
    assert info["kinds"]["capec"] == 2 and info["kinds"]["tactic"] == 14
    assert "Fixture Cross-site Scripting" in run("show", "CWE-79")
    assert "CWE 9.9" in run("info")


def test_unknown_id_is_one_line_exit_2(monkeypatch, capsys, kb):
    code, io = run_main(monkeypatch, capsys, "show", "CWE-99999999")
    assert code == 2 and io.err.strip() == "error: unknown id 'CWE-99999999' (try `cyberslm kb search`)"


def test_bad_import_names_the_file(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "truncated.xml"
    bad.write_text('<?xml version="1.0"?><Weakness_Catalog xmlns="http://cwe.mitre.org/cwe-7"><Weaknesses><Weak')
    code, io = run_main(monkeypatch, capsys, "import", str(bad))
    assert code == 2 and io.err.count("\n") == 1 and str(bad) in io.err and "malformed CWE XML" in io.err
