"""Triage: every input format, every output format, bad input, the Python API and the CLI as a process."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cyberslm.cli import cli
from cyberslm.data.cve import CveRecord
from cyberslm.errors import CyberslmError
from cyberslm.triage import read_items, triage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SQLI = "SQL injection in login.php via the id parameter allows remote attackers to execute arbitrary SQL commands."
XSS = "Cross-site scripting (XSS) vulnerability in search.php allows remote attackers to inject arbitrary web script."
runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(cli, ["triage", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_api_returns_contract_dicts():
    results = triage([SQLI, CveRecord(id="CVE-2099-0001", description=XSS)], k=3)
    first, second = (r.to_dict() for r in results)
    assert first["id"] is None and second["id"] == "CVE-2099-0001"
    assert first["model"] == "classifier:default"
    assert [p["cwe_id"] for p in first["predictions"]][0] == "CWE-89"
    assert second["predictions"][0]["cwe_id"] == "CWE-79"
    top = first["predictions"][0]
    assert set(top) == {"cwe_id", "name", "probability", "url", "explanation"}
    assert "SQL" in top["name"] and top["url"].endswith("/89.html")
    assert (
        top["explanation"]["summary"]
        and top["explanation"]["consequence"]
        and top["explanation"]["mitigation"]
    )
    probs = [p["probability"] for p in first["predictions"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1


def test_text_file_one_per_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(f"{SQLI}\n\n{XSS}\n")
    assert [d for _, d in read_items(path)] == [SQLI, XSS]


def test_csv_with_id_column(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(f'CVE,Description\nCVE-1,"{SQLI}"\nCVE-2,"{XSS}"\n')
    assert list(read_items(path)) == [("CVE-1", SQLI), ("CVE-2", XSS)]


def test_csv_without_description_column_is_one_line_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,text\n1,hello\n")
    with pytest.raises(CyberslmError, match=r"bad\.csv: CSV has no 'description' column"):
        list(read_items(path))
    result = subprocess.run(
        [sys.executable, "-m", "cyberslm.cli", "triage", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no 'description' column" in result.stderr


def test_jsonl_input(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps({"id": "A", "description": SQLI}) + "\n" + json.dumps({"description": XSS}) + "\n"
    )
    assert list(read_items(path)) == [("A", SQLI), (None, XSS)]


def test_jsonl_bad_line_names_the_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "A", "description": SQLI}) + "\n{oops\n")
    with pytest.raises(CyberslmError, match="line 2"):
        list(read_items(path))


def test_nvd_json_detected_by_content(tmp_path):
    copy = tmp_path / "feed.data"  # no telling suffix: detection is by content
    copy.write_text((EXAMPLES / "cves.json").read_text())
    items = list(read_items(copy))
    assert len(items) == 8 and all(i and i.startswith("CVE-") for i, _ in items)


def test_output_formats(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(f"{SQLI}\n{XSS}\n")
    rows = [json.loads(line) for line in run(str(path), "--format", "jsonl", "-k", "2").splitlines()]
    assert [r["predictions"][0]["cwe_id"] for r in rows] == ["CWE-89", "CWE-79"]
    assert all(len(r["predictions"]) == 2 for r in rows)
    whole = json.loads(run(str(path), "--format", "json"))
    assert len(whole) == 2 and len(whole[0]["predictions"]) == 3
    table = list(csv.DictReader(io.StringIO(run(str(path), "--format", "csv"))))
    assert len(table) == 6 and table[0]["cwe_id"] == "CWE-89" and table[0]["rank"] == "1"
    text = run(str(path), "--format", "table")
    assert "CWE-89" in text and "CWE-79" in text
    out = tmp_path / "out.csv"
    run(str(path), "-o", str(out))
    assert next(csv.DictReader(out.open()))["cwe_id"] == "CWE-89"


def test_free_text_and_stdin():
    rows = [json.loads(line) for line in run(SQLI, XSS, "--format", "jsonl").splitlines()]
    assert [r["predictions"][0]["cwe_id"] for r in rows] == ["CWE-89", "CWE-79"]
    result = runner.invoke(cli, ["triage", "-", "-f", "jsonl"], input=f"{XSS}\n")
    assert result.exit_code == 0 and json.loads(result.output)["predictions"][0]["cwe_id"] == "CWE-79"


def test_cli_subprocess_streams_jsonl():
    """Results of one batch come out while the input is still open: a non-streaming CLI would hang here."""
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "cyberslm.cli", "triage", "-", "--batch-size", "8"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc.stdin.write(f"{SQLI}\n{XSS}\n" * 4)  # exactly one batch
        proc.stdin.flush()
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=60)
        assert got and json.loads(got[0])["predictions"][0]["cwe_id"] == "CWE-89", (
            "no output before end of input"
        )
        proc.stdin.write(f"{XSS}\n" * 5)
        proc.stdin.close()
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = [got[0], *rest.splitlines()]
    assert len(lines) == 13
    assert [json.loads(line)["predictions"][0]["cwe_id"] for line in lines[-5:]] == ["CWE-79"] * 5


def test_model_option_selects_a_classifier_folder(tiny_model):
    rows = [
        json.loads(line)
        for line in run(
            "path traversal of the plugin", "--model", f"classifier:{tiny_model}", "-f", "jsonl"
        ).splitlines()
    ]
    assert rows[0]["model"] == f"classifier:{tiny_model}"
    assert rows[0]["predictions"][0]["cwe_id"] == "CWE-22"


def test_unknown_backend_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "-m", "cyberslm.cli", "triage", SQLI, "--model", "nope:x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: model spec 'nope:x'")


@pytest.fixture
def chat_server():
    """A real local HTTP server speaking the OpenAI chat API; it answers like a model that read the prompt."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            seen.append(prompt)
            cwe = "CWE-89" if "SQL" in prompt else "CWE-79"
            message = {"role": "assistant", "content": f"It is injection.\n**{cwe}**"}
            reply = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"openai:http://127.0.0.1:{server.server_port}/v1#test-model", seen
    server.shutdown()


def test_model_backend_uses_rcm_prompt_and_final_line(chat_server):
    spec, seen = chat_server
    results = triage([SQLI, XSS], model=spec)
    assert [r.predictions[0].cwe_id for r in results] == ["CWE-89", "CWE-79"]
    assert results[0].predictions[0].probability is None and "SQL" in results[0].predictions[0].name
    assert results[0].to_dict()["answer"].endswith("**CWE-89**")
    assert all(p.startswith("Analyze the following CVE description") for p in seen)
    assert sorted(p.rsplit("CVE Description: ", 1)[1] for p in seen) == sorted(
        [SQLI, XSS]
    )  # concurrent requests


def test_discouraged_cwes_say_so_in_every_format():
    from io import StringIO

    from rich.console import Console

    from cyberslm.triage import TriageResult, Writer, explain

    assert explain("CWE-89", 0.9).mapping == "Allowed"
    generic = explain("CWE-20", 0.4)
    assert generic.to_dict()["explanation"]["mapping"] == "Discouraged" and generic.probability == 0.4
    result = TriageResult(None, "input is not validated", "classifier:default", [generic, explain("CWE-89", 0.1)])
    out = StringIO()
    Writer("csv", out).write([result])
    assert out.getvalue().splitlines()[0].endswith(",mapping") and ",Discouraged" in out.getvalue()
    screen = StringIO()
    Writer("table", StringIO(), console=Console(file=screen, width=200)).write([result])
    assert screen.getvalue().count("Discouraged by MITRE") == 1  # CWE-20 only, not CWE-89


def test_a_cwe_the_text_names_is_shown_when_not_predicted(tmp_path):
    # CWE-1321 is outside the shipped classifier's labels: it cannot be predicted, so it is listed as stated
    text = "Prototype pollution (CWE-1321) in the merge function of Acme Utils 1.2 lets attackers add properties."
    named, predicted, plain = triage([text, "A CWE-89: SQL injection vulnerability exists in login.php.", SQLI], k=3)
    assert [p.cwe_id for p in named.stated] == ["CWE-1321"] and "CWE-1321" not in {p.cwe_id for p in named.predictions}
    stated = named.to_dict()["stated"][0]
    assert "Prototype" in stated["name"] and stated["probability"] is None and stated["url"].endswith("/1321.html")
    assert predicted.predictions[0].cwe_id == "CWE-89" and predicted.stated == []  # predicted, so not repeated
    assert plain.to_dict()["stated"] == []

    src = tmp_path / "in.txt"
    src.write_text(text + "\n")
    rows = list(csv.DictReader(io.StringIO(run(str(src), "--format", "csv"))))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "stated"] and rows[3]["cwe_id"] == "CWE-1321"
    assert "named in the description" in " ".join(run(text, "--format", "table").split())
