"""Every task end to end through the openai backend against a real loopback HTTP server."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from cyberslm.eval.cli import app
from cyberslm.eval.scoring import cvss_base_score
from cyberslm.eval.tasks import TASKS

runner = CliRunner()


def _run(oai, fixtures_dir, out, *extra):
    args = ["run", "--model", f"openai:{oai.url}#test-model", "--data-dir", str(fixtures_dir),
            "--output-dir", str(out), "--no-progress", "--taa-alias", str(fixtures_dir / "taa-alias.json"),
            "--taa-related", str(fixtures_dir / "taa-related.json"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return json.loads((run_dir / "report.json").read_text()), run_dir, result.output


def test_all_tasks_foundation_sec(oai, fixtures_dir, tmp_path):
    report, run_dir, output = _run(oai, fixtures_dir, tmp_path, "--trials", "2")
    t = report["tasks"]
    assert report["protocol"] == "foundation-sec" and report["trials"] == 2
    assert t["cti-mcq"]["metrics"]["accuracy"] == {"mean": 0.25, "std": 0.0}  # the server always answers B
    assert t["cti-rcm"]["metrics"]["accuracy"]["mean"] == pytest.approx(1 / 3)  # always CWE-79
    assert t["cti-rcm"]["metrics"]["hierarchy_accuracy"]["mean"] == pytest.approx(1 / 3)
    gts = [it.gt for it in TASKS["cti-vsp"].load(fixtures_dir)]
    mad = sum(abs(9.8 - cvss_base_score(g)) for g in gts) / 3
    assert t["cti-vsp"]["metrics"]["mad"]["mean"] == pytest.approx(mad)
    assert t["cti-ate"]["metrics"]["f1"]["mean"] == pytest.approx(0.5)  # item 0 exact, item 1 disjoint
    assert t["cti-taa"]["metrics"]["correct"]["mean"] == pytest.approx(1 / 3)  # Fancy Bear = APT28 alias
    # 18 items x 2 trials, no system prompt, temperature 0.3, one seed per trial
    assert len(oai.requests) == 36
    assert {r["temperature"] for r in oai.requests} == {0.3}
    assert {r["seed"] for r in oai.requests} == {1234, 1235}
    assert all(r["messages"][0]["role"] == "user" for r in oai.requests)
    assert (run_dir / "report.md").read_text().count("foundation-sec") >= 1
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "GPT-4" in output and "0.710" in output
    # same command again: everything comes from the JSONL, nothing is asked
    again, _, _ = _run(oai, fixtures_dir, tmp_path, "--trials", "2")
    assert len(oai.requests) == 36 and again["tasks"] == report["tasks"]


def test_ctibench_protocol_drops_unparseable(oai, fixtures_dir, tmp_path):
    report, _, _ = _run(oai, fixtures_dir, tmp_path, "--protocol", "ctibench", "--tasks", "cti-mcq,cti-rcm")
    assert report["protocol"] == "ctibench" and report["trials"] == 1
    assert {r["temperature"] for r in oai.requests} == {0.0}
    assert all(r["messages"][0]["content"].startswith("You are a cybersecurity expert") for r in oai.requests)
    assert set(report["tasks"]) == {"cti-mcq", "cti-rcm"}


def test_bad_data_dir_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["run", "--model", "openai:http://127.0.0.1:9/v1", "--data-dir", str(tmp_path),
                                 "--tasks", "cti-mcq", "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert "cti-mcq.tsv: no such file" in str(result.exception)


def test_killed_run_resumes_without_asking_twice(fixtures_dir, tmp_path):
    from oai_server import start_server

    server, state = start_server(delay=0.15)
    url = f"openai:http://127.0.0.1:{server.server_port}/v1#test-model"
    cmd = [sys.executable, "-c", "from cyberslm.eval.cli import app; app()", "run", "--model", url,
           "--tasks", "cti-mcq,cti-rcm", "--trials", "2", "--batch-size", "1", "--data-dir", str(fixtures_dir),
           "--output-dir", str(tmp_path), "--no-progress"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.time() + 60
        jsonl = None
        while time.time() < deadline:
            found = list(tmp_path.glob("*/responses.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 4:
                jsonl = found[0]
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert jsonl is not None, "the run never wrote 4 responses"
        first = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
        answered = {(r["task"], r["index"], r["seed"]) for r in first}
        assert 4 <= len(answered) < 14
        asked_before = len(state.requests)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        prompts = {it.prompt: (name, it.index) for name in ("cti-mcq", "cti-rcm") for it in TASKS[name].load(fixtures_dir)}
        second = [(*prompts[r["prompt"]], r["seed"]) for r in state.requests[asked_before:]]
        assert not answered & set(second), "an item answered before the kill was asked again"
        rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
        keys = [r["key"] for r in rows]
        assert len(keys) == len(set(keys)) == (4 + 3) * 2
    finally:
        server.shutdown()
        server.server_close()


def test_grounded_run_adds_passages_in_its_own_run_dir(oai, fixtures_dir, tmp_path):
    pytest.importorskip("cyberslm.ask.grounding")
    report, run_dir, _ = _run(oai, fixtures_dir, tmp_path, "--grounded", "--tasks", "cti-mcq", "--trials", "1",
                              "--limit", "2")
    assert report["grounded"] and run_dir.name.endswith("__grounded")
    originals = [it.prompt for it in TASKS["cti-mcq"].load(fixtures_dir, limit=2)]
    sent = [r["prompt"] for r in oai.requests]
    assert len(sent) == 2
    # The openai backend sends concurrently, so requests may arrive in any order.
    for original in originals:
        assert any(original in s and len(s) > len(original) for s in sent), "prompt sent without passages"
