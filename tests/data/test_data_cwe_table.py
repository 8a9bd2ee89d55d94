"""`cyberslm data cwe` end to end: dedupe, placeholders, benchmark exclusion, JSONL/Parquet, resume."""

from __future__ import annotations

import gzip
import json
import sys

import pytest
from cve_builders import UAF, nvd11_feed, nvd11_item, nvd20_item, nvd20_response, write_json, write_rcm_tsv
from typer.testing import CliRunner

from cyberslm.data.cli import app
from cyberslm.data.cwe_table import build_cwe_table
from cyberslm.errors import CyberslmError

NVD = "nvd@nist.gov"


@pytest.fixture
def feeds(tmp_path):
    old = write_json(tmp_path / "nvdcve-1.1-2021.json", nvd11_feed([
        nvd11_item("CVE-2021-0001", "Old text of a flaw, replaced by the newer feed.", ["CWE-20"]),
        nvd11_item("CVE-2021-0002", UAF.replace("6.7.1", "6.7.3"), ["CWE-416"]),  # near-dup of a benchmark text
        nvd11_item("CVE-2024-23848", "Benchmark CVE under another wording entirely.", ["CWE-416"]),
        nvd11_item("CVE-2021-0003", "Nobody knows what this is.", ["NVD-CWE-noinfo"]),
        nvd11_item("CVE-2021-0004", "SQL injection in login.php.", ["CWE-89"], published="2021-03-04T05:06Z"),
        nvd11_item("CVE-2021-0005", "SQL  injection in LOGIN.php", ["CWE-89"]),  # same text, normalized
    ]), "gz")
    new = write_json(tmp_path / "nvd-api.json", nvd20_response([
        nvd20_item("CVE-2021-0001", [("es", "Recorrido."), ("en", "Path traversal in upload.")],
                   [("Primary", NVD, ["CWE-22"])]),
        nvd20_item("CVE-2022-0100", [("en", "XSS in the search box.")],
                   [("Primary", NVD, ["NVD-CWE-Other"]), ("Secondary", "cna@example.com", ["CWE-79"])]),
    ]))
    bench = write_rcm_tsv(tmp_path / "cti-rcm.tsv", [("CVE-2024-23848", UAF, "CWE-416")])
    return old, new, bench


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_end_to_end_with_exclusions(tmp_path, feeds):
    old, new, bench = feeds
    out = tmp_path / "cwe.jsonl"
    result = CliRunner().invoke(app, ["cwe", str(old), str(new), "-o", str(out), "--exclude", str(bench)])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["CVE-2021-0004", "CVE-2021-0001", "CVE-2022-0100"]
    assert rows[0] == {
        "id": "CVE-2021-0004", "description": "SQL injection in login.php.", "cwe": "CWE-89", "cwes": ["CWE-89"],
        "cvss_v3": None, "published": "2021-03-04T05:06Z", "year": 2021,
    }
    assert rows[1]["description"] == "Path traversal in upload." and rows[1]["cwe"] == "CWE-22"  # last wins
    assert rows[2]["cwe"] == "CWE-79" and rows[2]["cwes"] == ["CWE-79", "NVD-CWE-Other"]
    for line in ["read", "duplicate id", "no cwe", "excluded id", "excluded near dup", "duplicate description"]:
        assert line in result.output
    stats = build_cwe_table([old, new], tmp_path / "again.jsonl", exclude=[bench])
    assert stats.to_dict() == {
        "read": 8, "skipped_bad": 0, "duplicate_id": 1, "already_written": 0, "no_cwe": 1, "excluded_id": 1,
        "excluded_near_dup": 1, "duplicate_description": 1, "written": 3, "rows": 3, "labels": 3,
    }


def test_keep_placeholders(tmp_path, feeds):
    old, new, _ = feeds
    out = tmp_path / "all.jsonl"
    stats = build_cwe_table([old, new], out, keep_placeholders=True)
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert rows["CVE-2021-0003"]["cwe"] == "NVD-CWE-noinfo" and rows["CVE-2021-0003"]["cwes"] == ["NVD-CWE-noinfo"]
    assert stats.no_cwe == 0 and stats.written == 6  # benchmark rows stay: no --exclude here


def test_parquet_output(tmp_path, feeds):
    pq = pytest.importorskip("pyarrow.parquet")
    old, new, bench = feeds
    out = tmp_path / "cwe.parquet"
    result = CliRunner().invoke(app, ["cwe", str(old), str(new), "-o", str(out), "--exclude", str(bench)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["id", "description", "cwe", "cwes", "cvss_v3", "published", "year"]
    assert table.column("cwes").to_pylist()[2] == ["CWE-79", "NVD-CWE-Other"]
    assert not (tmp_path / "cwe.parquet.partial.jsonl").exists()
    with pytest.raises(CyberslmError, match="already exists"):
        build_cwe_table([old], out)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, feeds, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(CyberslmError, match="needs pyarrow"):
        build_cwe_table([feeds[0]], tmp_path / "x.parquet")


def test_resume_after_a_killed_run(tmp_path, feeds):
    old, new, bench = feeds
    out = tmp_path / "cwe.jsonl"
    full = build_cwe_table([old, new], tmp_path / "full.jsonl", exclude=[bench])
    first = (tmp_path / "full.jsonl").read_text().splitlines()[0]
    out.write_text(first + "\n" + '{"id": "CVE-2021-00')  # killed mid-write
    stats = build_cwe_table([old, new], out, exclude=[bench])
    assert stats.already_written == 1 and stats.written == full.written - 1 and stats.rows == full.rows
    assert read_jsonl(out) == read_jsonl(tmp_path / "full.jsonl")
    again = build_cwe_table([old, new], out, exclude=[bench], overwrite=True)
    assert again.written == full.written and len(read_jsonl(out)) == full.rows


def test_bad_feed_stops_unless_skip_bad(tmp_path, feeds):
    old, new, _ = feeds
    items = [nvd11_item(f"CVE-2020-{i:04d}", f"Flaw {i} " + "y" * 300, ["CWE-787"]) for i in range(300)]
    data = gzip.compress(json.dumps(nvd11_feed(items)).encode())
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "cwe.jsonl"
    result = CliRunner().invoke(app, ["cwe", str(cut), str(new), "-o", str(out)])
    assert isinstance(result.exception, CyberslmError) and "cut.json.gz: record" in str(result.exception)
    result = CliRunner().invoke(app, ["cwe", str(cut), str(new), "-o", str(out), "--skip-bad", "--overwrite"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert 0 < len(rows) < 302 and rows[-1]["id"] == "CVE-2022-0100"
    assert "skipped" in result.output and "truncated or corrupt" in result.output
