"""The CTI-Bench tasks as data: official file, columns, answer parser, scorer.

Each task reads the official TSV (CRLF, UTF-8, one record per line, header first) and sends the
benchmark's own Prompt column verbatim as the user message. Scorers live in `scoring.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cyberslm.errors import BadRecord, CyberslmError
from cyberslm.eval import parsing, scoring


@dataclass(frozen=True)
class Item:
    """One benchmark record: its row index, the prompt to send and the expected answer."""

    index: int
    prompt: str
    gt: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Task:
    name: str
    file: str  # official file name under data/ of xashru/cti-bench
    columns: tuple[str, ...]  # columns the loader requires
    parse: Callable[[str, bool], object]  # (response, strict) -> answer or None
    score: Callable[..., dict]  # scoring.<fn>(task, items, responses, protocol, context) -> metrics
    primary: str  # the headline metric in reports
    higher_is_better: bool = True
    gt_files: tuple[str, ...] = ()  # TAA: GT lives outside the data file

    def load(self, data_dir: str | Path, limit: int | None = None) -> list[Item]:
        """Read the task's TSV from data_dir; GT from the GT column or the task's separate GT file."""
        path = Path(data_dir) / self.file
        header, rows = read_tsv(path)
        missing = [c for c in self.columns if c not in header]
        if missing:
            raise CyberslmError(f"{path}: missing column(s) {', '.join(missing)} (have {', '.join(header)})")
        gts = self._separate_gt(Path(data_dir), len(rows)) if self.gt_files else None
        items = []
        for i, row in enumerate(rows):
            fields = dict(zip(header, row, strict=True))
            gt = gts[i] if gts is not None else fields["GT"].strip()
            if not fields["Prompt"].strip() or not gt:
                raise BadRecord(path, i + 2, "empty Prompt or GT")
            items.append(Item(index=i, prompt=fields["Prompt"], gt=gt, fields=fields))
        return items[:limit] if limit else items

    def _separate_gt(self, data_dir: Path, count: int) -> list[str]:
        for name in self.gt_files:
            path = data_dir / name
            if path.exists():
                header, rows = read_tsv(path)
                if "GT" not in header:
                    raise CyberslmError(f"{path}: no GT column")
                gts = [row[header.index("GT")].strip() for row in rows]
                if len(gts) != count:
                    raise CyberslmError(f"{path}: {len(gts)} GT rows but {self.file} has {count} records")
                return gts
        raise CyberslmError(f"{data_dir}: {self.name} needs its GT file, one of: {', '.join(self.gt_files)}")


def read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and records of a CTI-Bench TSV. Lines split on \\n only: texts may hold other breaks."""
    if not path.exists():
        raise CyberslmError(f"{path}: no such file (run `cyberslm eval download` or pass --data-dir)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CyberslmError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise CyberslmError(f"{path}: empty file")
    header = [h.strip() for h in lines[0].split("\t")]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        row = line.split("\t")
        if len(row) != len(header):
            raise BadRecord(path, number, f"expected {len(header)} tab-separated fields, found {len(row)}")
        rows.append(row)
    return header, rows


def _parse_letter(response: str, strict: bool):
    return parsing.extract_letter(response, strict)


def _parse_cwe(response: str, strict: bool):
    return parsing.extract_cwe(response, strict)


def _parse_cvss(response: str, strict: bool):
    return parsing.extract_cvss(response, strict)


def _parse_techniques(response: str, strict: bool):
    return parsing.extract_techniques(response, strict)


def _parse_actor(response: str, strict: bool):
    return parsing.extract_actor(response, strict)  # lenient matching against names happens in the scorer


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("cti-mcq", "cti-mcq.tsv", ("Prompt", "GT"), _parse_letter, scoring.score_exact, "accuracy"),
        Task("cti-rcm", "cti-rcm.tsv", ("Prompt", "GT"), _parse_cwe, scoring.score_rcm, "accuracy"),
        Task("cti-rcm-2021", "cti-rcm-2021.tsv", ("Prompt", "GT"), _parse_cwe, scoring.score_rcm, "accuracy"),
        Task("cti-vsp", "cti-vsp.tsv", ("Prompt", "GT"), _parse_cvss, scoring.score_vsp, "mad", False),
        Task("cti-ate", "cti-ate.tsv", ("Prompt", "GT"), _parse_techniques, scoring.score_ate, "f1"),
        Task("cti-taa", "cti-taa.tsv", ("Prompt",), _parse_actor, scoring.score_taa, "correct",
             gt_files=("cti-taa-gt.tsv", "cti-taa-responses.tsv")),
    ]
}


def get_tasks(names: str | list[str] | None) -> list[Task]:
    """Tasks by comma-separated names (or 'all'/None for every task), in registry order."""
    if names is None or names == "all":
        return list(TASKS.values())
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in TASKS]
    if unknown:
        raise CyberslmError(f"--tasks: unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    return [TASKS[n] for n in TASKS if n in wanted]
