"""Builders for small files in each official CVE format, shaped like the real NVD / CVE List files.

Imported by the tests in this folder; every test writes its own files under tmp_path.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path


def nvd11_item(cve_id: str, text: str | None, cwes=(), vector=None, published="2022-01-01T10:15Z", lang="en"):
    """One CVE_Items entry as the NVD JSON 1.1 feeds write it (CVE JSON 4.0 inside)."""
    descriptions = [] if text is None else [{"lang": lang, "value": text}]
    return {
        "cve": {
            "data_type": "CVE", "data_format": "MITRE", "data_version": "4.0",
            "CVE_data_meta": {"ID": cve_id, "ASSIGNER": "cve@mitre.org"},
            "problemtype": {"problemtype_data": [{"description": [{"lang": "en", "value": c} for c in cwes]}]},
            "references": {"reference_data": []},
            "description": {"description_data": descriptions},
        },
        "configurations": {"CVE_data_version": "4.0", "nodes": []},
        "impact": {"baseMetricV3": {"cvssV3": {"version": "3.1", "vectorString": vector}}} if vector else {},
        "publishedDate": published,
        "lastModifiedDate": published,
    }


def nvd11_feed(items: list[dict]) -> dict:
    return {
        "CVE_data_type": "CVE", "CVE_data_format": "MITRE", "CVE_data_version": "4.0",
        "CVE_data_numberOfCVEs": str(len(items)), "CVE_data_timestamp": "2022-11-04T07:00Z",
        "CVE_Items": items,
    }


def nvd20_item(cve_id, descriptions, weaknesses=(), metrics=None, status="Analyzed", published="2024-01-02T03:04:05.678"):
    """One `vulnerabilities` entry of an NVD API 2.0 response; weaknesses are (type, source, [values])."""
    return {
        "cve": {
            "id": cve_id, "sourceIdentifier": "cve@mitre.org", "published": published,
            "lastModified": published, "vulnStatus": status, "cveTags": [],
            "descriptions": [{"lang": lang, "value": value} for lang, value in descriptions],
            "metrics": metrics or {},
            "weaknesses": [
                {"source": source, "type": kind, "description": [{"lang": "en", "value": v} for v in values]}
                for kind, source, values in weaknesses
            ],
            "references": [],
        }
    }


def cvss_metric(vector: str, kind: str, source: str) -> dict:
    return {"source": source, "type": kind, "cvssData": {"version": vector[5:8], "vectorString": vector}}


def nvd20_response(items: list[dict]) -> dict:
    return {
        "resultsPerPage": len(items), "startIndex": 0, "totalResults": len(items), "format": "NVD_CVE",
        "version": "2.0", "timestamp": "2025-06-23T22:02:16.739", "vulnerabilities": items,
    }


def cve5_record(cve_id, descriptions, cwes=(), vector=None, state="PUBLISHED", adp_cwes=()):
    """A CVE JSON 5.x record as cvelistV5 stores it (containers before cveMetadata, as in the files)."""
    cna = {
        "providerMetadata": {"orgId": "00000000-0000-0000-0000-000000000000", "shortName": "acme"},
        "descriptions": [{"lang": lang, "value": value} for lang, value in descriptions],
        "problemTypes": [{"descriptions": [{"lang": "en", "type": "CWE", "cweId": c, "description": f"{c} x"}
                                           for c in cwes]}],
        "metrics": [{"format": "CVSS", "cvssV3_1": {"version": "3.1", "vectorString": vector}}] if vector else [],
    }
    containers = {"cna": cna}
    if adp_cwes:
        containers["adp"] = [{
            "providerMetadata": {"orgId": "1", "shortName": "CISA-ADP"},
            "problemTypes": [{"descriptions": [{"lang": "en", "type": "CWE", "cweId": c} for c in adp_cwes]}],
        }]
    if state == "REJECTED":
        containers = {"cna": {"providerMetadata": cna["providerMetadata"],
                              "rejectedReasons": [{"lang": "en", "value": "withdrawn"}]}}
    return {
        "containers": containers,
        "cveMetadata": {"cveId": cve_id, "state": state, "datePublished": "2024-02-03T04:05:06.000Z"},
        "dataType": "CVE_RECORD",
        "dataVersion": "5.1",
    }


def write_json(path: Path, obj, compression: str = "plain") -> Path:
    """Write `obj` as plain JSON, gzip, or a one-member zip (as the NVD .json.zip feeds)."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    if compression == "gz":
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    elif compression == "zip":
        path = path.with_name(path.name + ".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path.name[:-4], data)
    else:
        path.write_bytes(data)
    return path


UAF = ("In the Linux kernel through 6.7.1, there is a use-after-free in cec_queue_msg_fh, related to "
       "drivers/media/cec/core/cec-adap.c and drivers/media/cec/core/cec-api.c.")
PROMPT = ("Analyze the following CVE description and map it to the appropriate CWE. Provide a brief "
          "justification for your choice. Ensure the last line of your response contains only the CWE ID.  "
          "CVE Description: ")


def write_rcm_tsv(path, rows):
    """A CTI-Bench RCM-shaped file: header URL, Description, Prompt, GT; CRLF line ends."""
    lines = ["URL\tDescription\tPrompt\tGT"]
    for cve_id, description, gt in rows:
        lines.append(f"https://nvd.nist.gov/vuln/detail/{cve_id}\t{description}\t{PROMPT}{description}\t{gt}")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def write_big_nvd11_feed(path: Path, target_bytes: int) -> tuple[int, int]:
    """Stream a gzip NVD 1.1 feed of about `target_bytes` uncompressed; returns (items, bytes)."""
    cpes = [{"vulnerable": True, "cpe23Uri": f"cpe:2.3:a:vendor:product:{v}.0:*:*:*:*:*:*:*", "cpe_name": []}
            for v in range(40)]
    written = items = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        head = json.dumps(nvd11_feed([]))[:-2]  # ... "CVE_Items": [
        fh.write(head)
        written += len(head)
        while written < target_bytes:
            item = nvd11_item(f"CVE-2022-{items:05d}", f"Synthetic flaw {items} in component {items % 97}. " * 4,
                              [f"CWE-{items % 900 + 1}"], "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
            item["configurations"]["nodes"] = [{"operator": "OR", "children": [], "cpe_match": cpes}]
            chunk = ("," if items else "") + json.dumps(item)
            fh.write(chunk)
            written += len(chunk)
            items += 1
        fh.write("]}")
    return items, written + 2
