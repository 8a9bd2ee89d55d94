"""Small I/O helpers shared by every stage: transparent .gz/.zip opening and append-only JSONL."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cyberslm.errors import CyberslmError


@contextmanager
def open_text(path: str | Path) -> Iterator[IO[str]]:
    """Open a plain, .gz or single-member .zip file as UTF-8 text."""
    path = Path(path)
    if not path.exists():
        raise CyberslmError(f"{path}: no such file")
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            yield fh
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise CyberslmError(f"{path}: expected one file in the zip, found {len(members)}")
            with zf.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as fh:
            yield fh


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL input file (plain, .gz or .zip).

    Strict, unlike JsonlAppender.read: a bad line in a user's input is a one-line error naming it.
    """
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CyberslmError(f"{path}: line {n}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise CyberslmError(f"{path}: line {n}: expected a JSON object")
            yield n, row


class JsonlAppender:
    """Append one JSON object per line and flush, so a killed run keeps every finished line.

    `done_keys()` reads back what a previous run wrote, which is how long jobs resume.
    A torn last line (the process died mid-write) is dropped, never fatal.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # torn tail from a crash: everything before it is good
        return rows

    def done_keys(self, key: str) -> set:
        return {row[key] for row in self.read() if key in row}

    def write(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            self._repair_tail()
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def _repair_tail(self) -> None:
        # Drop a partial last line so appended rows start on a fresh line.
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            self.path.write_bytes(data[:cut])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
