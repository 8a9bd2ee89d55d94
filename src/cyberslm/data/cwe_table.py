"""CVE feeds -> a CVE-to-CWE table (JSONL or Parquet), deduplicated and decontaminated.

Two streaming passes keep memory flat: the first finds where each CVE id occurs last (a later feed
updates an earlier one: last wins), the second writes rows as they go. Rows go to a JSONL journal
first, so a killed run keeps what it wrote and a rerun resumes; a Parquet output is converted from the
journal at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from cyberslm.data.cve import CveRecord
from cyberslm.data.decontam import Exclusions, load_exclusions
from cyberslm.data.reader import read_cves
from cyberslm.errors import CyberslmError
from cyberslm.io import JsonlAppender

COLUMNS = ("id", "description", "cwe", "cwes", "cvss_v3", "published", "year")
_YEAR = re.compile(r"CVE-(\d{4})-", re.IGNORECASE)
_NON_WORD = re.compile(r"\W+")


@dataclass
class TableStats:
    """What happened to every record read, in the order the filters apply."""

    read: int = 0
    skipped_bad: int = 0
    duplicate_id: int = 0  # an earlier copy of a CVE that a later feed repeats
    already_written: int = 0  # found in the output of an interrupted run
    no_cwe: int = 0
    excluded_id: int = 0
    excluded_near_dup: int = 0
    duplicate_description: int = 0
    written: int = 0
    rows: int = 0  # rows in the output, resumed ones included
    labels: int = 0  # distinct `cwe` values in the output

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def normalize_description(text: str) -> str:
    """Case, spacing and punctuation removed: two descriptions equal here are the same text."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def cwe_row(record: CveRecord) -> dict:
    """One table row: `cwe` is the first real CWE (primary first), else the first NVD placeholder."""
    real = record.real_cwes
    placeholders = list(dict.fromkeys(c.id for c in record.cwes if c.is_placeholder))
    year = _YEAR.match(record.id)
    return {
        "id": record.id,
        "description": record.description,
        "cwe": (real or placeholders or [None])[0],
        "cwes": real + placeholders,
        "cvss_v3": record.cvss_v3,
        "published": record.published,
        "year": int(year.group(1)) if year else None,  # the year in the CVE id
    }


def _records(paths: list[Path], skip_bad: bool, on_bad=None) -> Iterator[CveRecord]:
    for path in paths:
        yield from read_cves(path, skip_bad=skip_bad, on_bad=on_bad or (lambda err: None))


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def build_cwe_table(
    paths: Iterable[str | Path],
    out: str | Path,
    exclude: Iterable[str | Path] | Exclusions = (),
    skip_bad: bool = False,
    keep_placeholders: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    near_dup: float = 0.8,
) -> TableStats:
    """Write the labelled table for `paths` (feeds, files or folders) to `out` (.jsonl or .parquet).

    Rows: id, description, cwe, cwes, cvss_v3, published, year. Dedupes by CVE id (last wins) and by
    normalized description; drops records without a real CWE unless `keep_placeholders`; removes the
    ids of `exclude` (benchmark files, or an `Exclusions`) and descriptions whose word 3-shingle
    Jaccard similarity with one of theirs is >= `near_dup`.
    An existing JSONL output is resumed unless `overwrite`.
    """
    paths = [Path(p) for p in paths]
    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise CyberslmError(f"{out}: output must end in .jsonl or .parquet")
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CyberslmError(f"{out}: writing Parquet needs pyarrow (pip install pyarrow)") from None
        journal = out.with_name(out.name + ".partial.jsonl")
        if out.exists() and not journal.exists() and not overwrite:
            raise CyberslmError(f"{out}: already exists (pass --overwrite to rebuild it)")
    else:
        journal = out
    if overwrite:
        journal.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    exclusions = exclude if isinstance(exclude, Exclusions) else load_exclusions(list(exclude), near_dup)

    stats = TableStats()
    writer = JsonlAppender(journal)
    done = writer.read()
    done_ids = {row["id"] for row in done}
    seen_text = {normalize_description(row["description"]) for row in done}
    labels = {row["cwe"] for row in done if row.get("cwe")}
    stats.rows = len(done)
    del done

    with _progress(progress) as bar:
        # Pass 1: the position of the last copy of each id.
        task = bar.add_task("scanning", total=None) if bar else None
        last: dict[str, int] = {}
        for seq, record in enumerate(_records(paths, skip_bad)):
            last[record.id] = seq
            stats.read = seq + 1
            if bar and seq % 1000 == 0:
                bar.update(task, completed=seq)
        if bar:
            bar.update(task, completed=stats.read, total=stats.read)
            task = bar.add_task("writing", total=stats.read)

        # Pass 2: filter and write.
        def count_bad(err: CyberslmError) -> None:
            stats.skipped_bad += 1
            if bar:
                bar.console.print(f"[yellow]skipped:[/] {err}", markup=True, highlight=False)

        with writer:
            for seq, record in enumerate(_records(paths, skip_bad, count_bad)):
                if bar and seq % 1000 == 0:
                    bar.update(task, completed=seq)
                if last.get(record.id) != seq:
                    stats.duplicate_id += 1
                    continue
                if record.id in done_ids:
                    stats.already_written += 1
                    continue
                if not record.real_cwes and not keep_placeholders:
                    stats.no_cwe += 1
                    continue
                if record.id.upper() in exclusions.ids:
                    stats.excluded_id += 1
                    continue
                if exclusions.is_near_duplicate(record.description):
                    stats.excluded_near_dup += 1
                    continue
                key = normalize_description(record.description)
                if key in seen_text:
                    stats.duplicate_description += 1
                    continue
                seen_text.add(key)
                row = cwe_row(record)
                writer.write(row)
                stats.written += 1
                if row["cwe"]:
                    labels.add(row["cwe"])
        if bar:
            bar.update(task, completed=stats.read)

    stats.rows += stats.written
    stats.labels = len(labels)
    if out.suffix == ".parquet":
        _jsonl_to_parquet(journal, out)
        journal.unlink()
    return stats


def _jsonl_to_parquet(journal: Path, out: Path, batch: int = 5_000) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("id", pa.string()), ("description", pa.string()), ("cwe", pa.string()),
        ("cwes", pa.list_(pa.string())), ("cvss_v3", pa.string()), ("published", pa.string()),
        ("year", pa.int32()),
    ])
    tmp = out.with_name(out.name + ".tmp")
    journal.touch()  # a run that wrote no rows still gives an (empty) table
    with pq.ParquetWriter(tmp, schema) as pw, open(journal, encoding="utf-8") as fh:
        rows: list[dict] = []
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= batch:
                pw.write_table(pa.Table.from_pylist(rows, schema))
                rows = []
        if rows:
            pw.write_table(pa.Table.from_pylist(rows, schema))
    tmp.replace(out)
