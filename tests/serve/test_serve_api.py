"""Triage, ask, knowledge, feed upload, metrics and bad input over real HTTP."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from cyberslm.serve.schemas import MAX_TEXT_CHARS, MAX_TRIAGE_ITEMS

SQLI = ("SQL injection vulnerability in login.php in Acme CMS 2.1 allows remote attackers to execute "
        "arbitrary SQL commands via the username parameter.")
XSS = ("Cross-site scripting (XSS) vulnerability in search.php in Acme Forum 1.0 allows remote attackers "
       "to inject arbitrary web script or HTML via the q parameter.")
CWE_ID = re.compile(r"^CWE-\d+$")


def test_healthz_is_open_and_says_what_is_loaded(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["chat_model"] == "classifier:default"


def test_triage_one_and_many(client):
    one = client.post("/v1/triage", json={"text": SQLI, "k": 3})
    assert one.status_code == 200, one.text
    [result] = one.json()["results"]
    preds = result["predictions"]
    assert len(preds) == 3
    assert all(CWE_ID.match(p["cwe_id"]) and p["name"] and p["url"].startswith("https://cwe.mitre.org/")
               for p in preds)
    probs = [p["probability"] for p in preds]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert "CWE-89" in [p["cwe_id"] for p in preds]
    assert set(preds[0]["explanation"]) >= {"summary", "consequence", "mitigation"}

    many = client.post("/v1/triage", json={"texts": [SQLI, XSS], "ids": ["CVE-2099-0001", "CVE-2099-0002"],
                                           "k": 2}).json()["results"]
    assert [r["id"] for r in many] == ["CVE-2099-0001", "CVE-2099-0002"]
    assert "CWE-79" in [p["cwe_id"] for p in many[1]["predictions"]]
    assert all(len(r["predictions"]) == 2 for r in many)


def _cve5(cve_id: str, text: str) -> dict:
    return {"dataType": "CVE_RECORD", "dataVersion": "5.1",
            "cveMetadata": {"cveId": cve_id, "state": "PUBLISHED", "datePublished": "2099-01-01T00:00:00"},
            "containers": {"cna": {"descriptions": [{"lang": "en", "value": text}],
                                   "problemTypes": [], "references": []}}}


def _nvd11(items: list[tuple[str, str]]) -> dict:
    return {"CVE_data_type": "CVE", "CVE_data_format": "MITRE", "CVE_data_version": "4.0",
            "CVE_data_numberOfCVEs": str(len(items)),
            "CVE_Items": [{"cve": {"data_type": "CVE", "data_format": "MITRE", "data_version": "4.0",
                                   "CVE_data_meta": {"ID": i, "ASSIGNER": "cve@mitre.org"},
                                   "problemtype": {"problemtype_data": [{"description": []}]},
                                   "references": {"reference_data": []},
                                   "description": {"description_data": [{"lang": "en", "value": t}]}},
                           "impact": {}, "publishedDate": "2099-01-01T00:00Z"} for i, t in items]}


def test_triage_feed_upload_uses_the_real_readers(client):
    body = json.dumps(_cve5("CVE-2099-1234", SQLI)).encode()
    r = client.post("/v1/triage/feed", params={"name": "CVE-2099-1234.json", "k": 2}, content=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["records"] == 1 and not out["truncated"]
    assert out["results"][0]["id"] == "CVE-2099-1234"

    feed = gzip.compress(json.dumps(_nvd11([("CVE-2099-0001", SQLI), ("CVE-2099-0002", XSS)])).encode())
    r = client.post("/v1/triage/feed", params={"name": "nvdcve-1.1-2099.json.gz"}, content=feed)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["results"]] == ["CVE-2099-0001", "CVE-2099-0002"]


def test_bad_feed_is_a_4xx_with_a_message(client):
    r = client.post("/v1/triage/feed", params={"name": "x.json"}, content=b"{not json")
    assert 400 <= r.status_code < 500
    assert r.json()["error"]["message"]
    assert client.post("/v1/triage/feed", content=b"").status_code == 422


def test_ask_free_form_and_multiple_choice(client):
    r = client.post("/v1/ask", json={"question": "Which technique covers abuse of PowerShell commands and scripts?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] and body["letter"] is None
    assert body["sources"] and all(s["id"] and s["url"].startswith("https://") for s in body["sources"])

    options = {"A": "T1059.001 PowerShell", "B": "T1486 Data Encrypted for Impact",
               "C": "T1566 Phishing", "D": "T1003 OS Credential Dumping"}
    r = client.post("/v1/ask", json={"question": "Which ATT&CK technique covers PowerShell abuse?",
                                      "options": options})
    assert r.status_code == 200, r.text
    assert r.json()["letter"] in options


def test_kb_entry_and_unknown_id(client):
    entry = client.get("/v1/kb/cwe-79").json()
    assert entry["id"] == "CWE-79" and "Cross-site" in entry["name"]
    assert entry["url"] == "https://cwe.mitre.org/data/definitions/79.html"
    assert client.get("/v1/kb/T1059.001").json()["id"] == "T1059.001"
    missing = client.get("/v1/kb/CWE-99999999")
    assert missing.status_code == 404 and "CWE-99999999" in missing.json()["error"]["message"]
    assert client.get("/v1/kb/bad%20id!").status_code == 422


@pytest.mark.parametrize("body, field", [
    ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
    ({"texts": ["a"] * (MAX_TRIAGE_ITEMS + 1)}, "texts"),
    ({"text": ""}, "text"),
    ({"text": SQLI, "k": 0}, "k"),
    ({"text": SQLI, "texts": [XSS]}, "exactly one"),
    ({}, "exactly one"),
    ({"texts": [SQLI], "ids": ["a", "b"]}, "ids"),
    ({"text": SQLI, "surprise": 1}, "surprise"),
    ({"text": 42}, "text"),
])
def test_invalid_triage_bodies_are_422_naming_the_field(client, body, field):
    r = client.post("/v1/triage", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]


def test_malformed_and_oversized_bodies_are_4xx_never_500(client):
    assert client.post("/v1/triage", content=b"{\"text\": ", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/v1/triage", content=b"\xff\xfe", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/v1/triage", json=["a", "list"]).status_code == 422
    assert client.post("/v1/ask", json={"question": "q", "options": {"A": "only one"}}).status_code == 422
    big = json.dumps({"text": "y" * 300_000}).encode()  # above this server's 256 KiB limit
    r = client.post("/v1/triage", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit must hold while reading
        for _ in range(40):
            yield b"z" * 10_000

    r = client.post("/v1/triage", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/v1/nope").status_code == 404
    assert client.get("/v1/triage").status_code == 405


def test_metrics_prometheus_text(client):
    client.post("/v1/triage", json={"text": SQLI})
    client.post("/v1/triage", json={"text": ""})
    text = client.get("/metrics").text
    assert '# TYPE cyberslm_requests_total counter' in text
    assert re.search(r'cyberslm_requests_total\{route="/v1/triage",method="POST",status="200"\} [1-9]', text)
    assert re.search(r'cyberslm_request_duration_seconds_bucket\{route="/v1/triage",le="\+Inf"\} [1-9]', text)
    assert re.search(r'cyberslm_errors_total\{route="/v1/triage",type="invalid_request_error"\} [1-9]', text)
    assert "cyberslm_requests_in_flight" in text
