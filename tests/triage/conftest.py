"""Fixtures for classifier and triage tests: a tiny synthetic CWE table and a classifier trained on it."""

from __future__ import annotations

import json
import random

import pytest

# Phrases that make each CWE recognisable; rows mix them with shared filler words.
PHRASES = {
    "CWE-79": [
        "cross-site scripting",
        "inject arbitrary web script or html",
        "stored xss in the comment field",
    ],
    "CWE-89": ["sql injection", "execute arbitrary sql commands", "crafted sql query via the id parameter"],
    "CWE-22": [
        "path traversal",
        "directory traversal via dot dot slash",
        "read arbitrary files outside the root",
    ],
    "CWE-787": ["out-of-bounds write", "heap-based buffer overflow", "memory corruption via a crafted file"],
}
FILLER = [
    "in the admin panel",
    "of the plugin",
    "allows remote attackers",
    "before version 2.1.3",
    "in the web interface",
    "via a crafted request",
    "in acme products",
    "for wordpress",
]


def synthetic_rows(n_per_label: int = 30, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for label, phrases in PHRASES.items():
        for i in range(n_per_label):
            year = 2020 if i < n_per_label * 0.8 else 2021
            text = f"{rng.choice(phrases)} {rng.choice(FILLER)} {rng.choice(FILLER)} number {rng.randint(0, 10**6)}"
            cve = f"CVE-{year}-{label.split('-')[1]}{i:04d}"
            rows.append({"id": cve, "description": text, "cwe": label, "cwes": [label], "year": year})
    return rows


@pytest.fixture(scope="session")
def tiny_table(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "cwe.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_table, tmp_path_factory):
    """A classifier folder trained through the real CLI command on the synthetic table."""
    from typer.testing import CliRunner

    from cyberslm.cli import cli

    out = tmp_path_factory.mktemp("model") / "clf"
    result = CliRunner().invoke(
        cli, ["train", "classifier", str(tiny_table), "-o", str(out), "--min-support", "5"]
    )
    assert result.exit_code == 0, result.output
    return out
