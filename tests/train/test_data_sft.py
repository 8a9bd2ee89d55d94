"""`cyberslm data sft` on a tiny NVD 1.1 feed written here and the bundled knowledge."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cyberslm.data.sft import RCM_PROMPT, build_sft
from cyberslm.errors import CyberslmError
from cyberslm.eval.parsing import extract_cvss, extract_cwe, extract_letter
from cyberslm.knowledge import load_knowledge

CVES = [
    ("CVE-2019-0001", "CWE-79", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
     "Cross-site scripting in the search page of Foo CMS 1.2 allows remote attackers to inject script via q."),
    ("CVE-2019-0002", "CWE-89", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
     "SQL injection in the login form of Bar Shop 3.0 lets attackers run SQL commands via the user field."),
    ("CVE-2019-0003", "CWE-787", "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
     "An out-of-bounds write in the image decoder of Baz Viewer 2.1 allows code execution via a crafted file."),
    ("CVE-2019-0004", "NVD-CWE-noinfo", None, "Unspecified vulnerability in Qux Server 9 has unknown impact."),
]


def write_feed(path):
    items = []
    for cve_id, cwe, vector, desc in CVES:
        item = {"cve": {"CVE_data_meta": {"ID": cve_id},
                        "problemtype": {"problemtype_data": [{"description": [{"lang": "en", "value": cwe}]}]},
                        "description": {"description_data": [{"lang": "en", "value": desc}]}},
                "impact": {"baseMetricV3": {"cvssV3": {"vectorString": vector}}} if vector else {},
                "publishedDate": "2019-01-01T00:00Z"}
        items.append(item)
    path.write_text(json.dumps({"CVE_Items": items}), encoding="utf-8")
    return path


@pytest.fixture
def feed(tmp_path):
    return write_feed(tmp_path / "nvdcve-1.1-test.json")


def rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_every_record_type_has_the_right_prompt_and_final_line(feed, tmp_path):
    out = tmp_path / "sft.jsonl"
    counts = {"cve_cwe": 10, "cvss": 10, "cti_mcq": 3, "cti_qa": 2}
    stats = build_sft(out, counts, [feed], mcq_templates=["weakness"])
    by_source = {}
    for row in rows(out):
        by_source.setdefault(row["source"], []).append(row)
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert {s: len(v) for s, v in by_source.items()} == {"cve_cwe": 3, "cvss": 2, "cti_mcq": 3, "cti_qa": 2}
    assert stats["per_source"]["cve_cwe"] == 3 and stats["approx_tokens"] > 100
    assert json.loads(out.with_name("sft.jsonl.stats.json").read_text())["rows"] == 10

    kb = load_knowledge()
    truth = {c[0]: c for c in CVES}
    for row in by_source["cve_cwe"]:
        cve_id = row["id"].split(":", 1)[1]
        user, answer = (m["content"] for m in row["messages"])
        assert user == RCM_PROMPT.format(desc=truth[cve_id][3])
        assert extract_cwe(answer, strict=True) == truth[cve_id][1]
        assert kb.weakness(truth[cve_id][1]).name in answer  # grounded in the catalog entry
    for row in by_source["cvss"]:
        cve_id = row["id"].split(":", 1)[1]
        assert extract_cvss(row["messages"][1]["content"], strict=True) == truth[cve_id][2]
        assert "CVSS v3.1 Base Score" in row["messages"][0]["content"]
    for row in by_source["cti_mcq"]:
        assert extract_letter(row["messages"][1]["content"], strict=True) in "ABCD"
        assert "**Options:**" in row["messages"][0]["content"]
    for row in by_source["cti_qa"]:
        assert "**Options:**" not in row["messages"][0]["content"]


def test_mcq_rows_come_from_the_train_split_only(tmp_path):
    from cyberslm.data.mcq import is_dev_entry

    out = tmp_path / "mcq.jsonl"
    build_sft(out, {"cti_mcq": 40}, mcq_templates=["weakness"])
    subjects = [r["id"].split(":", 2)[2] for r in rows(out)]
    assert len(subjects) == 40
    assert not any(is_dev_entry(s) for sid in subjects for s in sid.split("+"))


def test_exclude_drops_ids_and_near_duplicates_and_rerun_resumes(feed, tmp_path):
    ids = tmp_path / "bench-ids.txt"
    ids.write_text("CVE-2019-0001\n", encoding="utf-8")
    bench = tmp_path / "bench.tsv"  # a CTI-Bench-style TSV whose description nearly repeats CVE-2019-0002
    bench.write_text("URL\tDescription\tPrompt\tGT\nhttps://x/CVE-2023-9999\t" + CVES[1][3] + " Fixed in 3.1"
                     + "\tp\tCWE-89\n", encoding="utf-8")
    out = tmp_path / "sft.jsonl"
    build_sft(out, {"cve_cwe": 10}, [feed], exclude=[ids, bench])
    assert [r["id"] for r in rows(out)] == ["cve_cwe:CVE-2019-0003"]

    out2 = tmp_path / "resume.jsonl"
    build_sft(out2, {"cve_cwe": 1}, [feed])
    first = rows(out2)
    stats = build_sft(out2, {"cve_cwe": 3}, [feed])  # a rerun adds only what is missing
    ids_written = [r["id"] for r in rows(out2)]
    assert ids_written[0] == first[0]["id"] and len(ids_written) == len(set(ids_written)) == 3
    assert stats["per_source"]["cve_cwe"] == 3


def test_errors_are_one_line(tmp_path):
    with pytest.raises(CyberslmError, match="--feeds"):
        build_sft(tmp_path / "x.jsonl", {"cve_cwe": 1})
    with pytest.raises(CyberslmError, match="unknown SFT source"):
        build_sft(tmp_path / "x.jsonl", {"tweets": 1})
    proc = subprocess.run([sys.executable, "-m", "cyberslm.cli", "data", "sft", "-o", str(tmp_path / "y.jsonl"),
                           "--count", "cve_cwe=two"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--count" in proc.stderr and proc.stderr.strip().count("\n") == 0
