"""Read questions: plain text, MCQ text ("A) ..." lines), CTI-Bench MCQ TSVs and JSONL.

A malformed question (options B and D without A and C, a TSV without its Option columns) raises
CyberslmError with one line naming the file and record.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from cyberslm.errors import BadRecord, CyberslmError
from cyberslm.io import open_text
from cyberslm.io import read_jsonl as jsonl_rows

OPTION_LINE = re.compile(r"^\s*\(?([A-Da-d])[).:]\s+(.+?)\s*$")
# CTI-Bench prompts put everything on one line: "**Question:** ... **Options:** A) x B) y C) z D) w **Important:**"
INLINE = re.compile(r"\*\*Question:\*\*\s*(?P<q>.+?)\s*\*\*Options:\*\*\s*(?P<o>.+?)\s*(?:\*\*Important|$)", re.S)
INLINE_OPTION = re.compile(r"(?:^|\s)([A-D])\)\s+(.+?)(?=\s+[A-D]\)\s|$)", re.S)
LETTER_SET = set("ABCD")
TSV_COLUMNS = ["Question", "Option A", "Option B", "Option C", "Option D"]


@dataclass
class Question:
    text: str
    options: dict[str, str] | None = None
    gt: str | None = None  # ground-truth letter when the file has one (GT column)


def check_options(options: dict[str, str], where: str) -> dict[str, str]:
    """Options must be consecutive letters from A (A-B at least, up to A-D), none empty."""
    options = {str(k).strip().upper(): str(v) for k, v in options.items()}
    bad = [x for x in options if x not in LETTER_SET]
    if bad:
        raise CyberslmError(f"{where}: option letter(s) {', '.join(bad)} not among A, B, C, D")
    letters = sorted(options)
    expected = list("ABCD"[: len(letters)])
    if letters != expected or len(letters) < 2:
        missing = [x for x in "ABCD"[: "ABCD".index(letters[-1]) + 1] if x not in options] if letters else []
        raise CyberslmError(
            f"{where}: options {', '.join(letters)} given but {', '.join(missing) or 'B'} missing "
            "(expected options A) to D) one per line)"
        )
    for letter in letters:
        if not options[letter].strip():
            raise CyberslmError(f"{where}: option {letter} is empty")
    return {x: options[x].strip() for x in letters}


def parse_question(text: str, where: str = "question") -> Question:
    """Split a question into its stem and options (if any)."""
    text = text.strip()
    if not text:
        raise CyberslmError(f"{where}: empty question")
    inline = INLINE.search(text)
    if inline:
        options = {m.group(1): m.group(2) for m in INLINE_OPTION.finditer(inline.group("o"))}
        return Question(inline.group("q").strip(), check_options(options, where))
    stem, options = [], {}
    for line in text.splitlines():
        m = OPTION_LINE.match(line)
        if m:
            options[m.group(1).upper()] = m.group(2)
        elif options and line.strip():
            raise CyberslmError(f"{where}: text after the options: {line.strip()[:60]!r}")
        else:
            stem.append(line.strip())
    question = " ".join(s for s in stem if s)
    if not question:
        raise CyberslmError(f"{where}: options without a question")
    return Question(question, check_options(options, where) if options else None)


def read_tsv(path: Path) -> list[Question]:
    with open_text(path) as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in TSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CyberslmError(f"{path}: missing column(s) {', '.join(missing)} (CTI-Bench MCQ TSV)")
        out = []
        for n, row in enumerate(reader, start=1):
            options = {x: (row.get(f"Option {x}") or "") for x in "ABCD"}
            if not (row.get("Question") or "").strip():
                raise BadRecord(path, n, "empty Question")
            gt = (row.get("GT") or "").strip().upper() or None
            out.append(Question(row["Question"].strip(), check_options(options, f"{path}: record {n}"), gt))
        return out


def read_jsonl(path: Path) -> list[Question]:
    out = []
    for n, row in jsonl_rows(path):
        if not isinstance(row.get("question"), str):
            raise BadRecord(path, n, "expected a JSON object with a 'question' string")
        text = row["question"]
        options = row.get("options")
        out.append(Question(text, check_options(options, f"{path}: record {n}") if options else None,
                            row.get("answer") or row.get("gt")))
    return out


def read_questions(path: str | Path) -> list[Question]:
    """Questions from a .tsv (CTI-Bench MCQ), .jsonl ({question, options?, answer?}) or text file.

    In a text file, questions are separated by blank lines; option lines ("A) ...") follow their stem.
    """
    path = Path(path)
    name = path.name.removesuffix(".gz")
    if name.endswith(".tsv"):
        return read_tsv(path)
    if name.endswith(".jsonl"):
        return read_jsonl(path)
    with open_text(path) as fh:
        blocks = re.split(r"\n\s*\n", fh.read())
    out = [parse_question(b, f"{path}: question {n}") for n, b in enumerate(blocks, start=1) if b.strip()]
    if not out:
        raise CyberslmError(f"{path}: no questions in the file")
    return out
