"""Fetch the official CTI-Bench TSVs, only when the user runs `cyberslm eval download`.

Files come from the public repository xashru/cti-bench (raw files, folder data/); the TAA ground
truth sits in evaluation/responses/cti-taa-responses.tsv there. The base URL is configurable
(a mirror, or a local server in tests).
"""

from __future__ import annotations

from pathlib import Path

from cyberslm.errors import CyberslmError

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/xashru/cti-bench/main"
FILES = {
    "cti-mcq.tsv": "data/cti-mcq.tsv",
    "cti-rcm.tsv": "data/cti-rcm.tsv",
    "cti-rcm-2021.tsv": "data/cti-rcm-2021.tsv",
    "cti-vsp.tsv": "data/cti-vsp.tsv",
    "cti-ate.tsv": "data/cti-ate.tsv",
    "cti-taa.tsv": "data/cti-taa.tsv",
    "cti-taa-responses.tsv": "evaluation/responses/cti-taa-responses.tsv",
}


def download(dest: str | Path, base_url: str = DEFAULT_BASE_URL, timeout: float = 60.0) -> list[Path]:
    """Download every file to dest (written to a .part file first, so a broken transfer leaves nothing)."""
    import httpx

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for name, remote in FILES.items():
            url = f"{base_url.rstrip('/')}/{remote}"
            try:
                reply = client.get(url)
                reply.raise_for_status()
            except httpx.HTTPError as exc:
                raise CyberslmError(f"{url}: download failed ({exc})") from exc
            part = dest / (name + ".part")
            part.write_bytes(reply.content)
            part.replace(dest / name)
            written.append(dest / name)
    return written
