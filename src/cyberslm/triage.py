"""`cyberslm triage`: CVE descriptions in, the most likely CWEs out, each explained from the CWE catalog.

Inputs: free-text arguments, stdin (`-`), text files (one description per line), CSV (a `description`
column, `id` if present), JSONL ({id, description}) or CVE/NVD JSON (anything `read_cves` reads),
detected by content. Predictions come from the fast CPU classifier by default, or from any backend
(`--model hf:...`) asked the CTI-Bench RCM question. A CWE the description names itself ("CWE-1321: ...")
and the model did not predict is listed after the predictions, without a probability: it is often outside
the classifier's labels. Results stream out in batches, flushed, so a killed run keeps everything it wrote.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import typer

from cyberslm.data.sft import RCM_PROMPT  # the CTI-Bench RCM instruction, one definition
from cyberslm.errors import CyberslmError
from cyberslm.eval.parsing import find_cwes  # only `re`: cheap at start-up
from cyberslm.io import read_jsonl

FORMATS = ("table", "json", "jsonl", "csv")
ID_COLUMNS = ("id", "cve", "cve_id", "cveid", "cve id")


@dataclass
class Prediction:
    cwe_id: str
    probability: float | None  # calibrated classifier probability; None for a generative model's answer
    name: str = ""
    url: str = ""
    summary: str = ""  # what the weakness is: first sentence of its CWE description
    consequence: str = ""  # first common consequence: "Scope, Scope: Impact, Impact"
    mitigation: str = ""  # first potential mitigation, first sentence
    mapping: str = ""  # MITRE's mapping guidance for this CWE: Allowed, Allowed-with-Review, Discouraged, Prohibited

    def to_dict(self) -> dict:
        return {
            "cwe_id": self.cwe_id,
            "name": self.name,
            "probability": self.probability,
            "url": self.url,
            "explanation": {
                "summary": self.summary,
                "consequence": self.consequence,
                "mitigation": self.mitigation,
                "mapping": self.mapping,
            },
        }


@dataclass
class TriageResult:
    id: str | None
    description: str
    model: str
    predictions: list[Prediction] = field(default_factory=list)
    answer: str | None = None  # a generative model's full response (None for the classifier)
    # CWEs the description names itself that are not among the predictions (often outside the classifier's
    # labels: a CNA that writes "CWE-1321: Prototype Pollution" into its text); shown, never scored
    stated: list[Prediction] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "description": self.description,
            "model": self.model,
            "predictions": [p.to_dict() for p in self.predictions],
            "stated": [p.to_dict() for p in self.stated],
        }
        if self.answer is not None:
            out["answer"] = self.answer
        return out


# -- grounding ---------------------------------------------------------------------------------------------
def _first_sentence(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    for end in (". ", ".\n"):
        cut = text.find(end)
        if 0 < cut < limit:
            return text[: cut + 1]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_EXPLAINED: dict[str, Prediction] = {}


def explain(cwe_id: str, probability: float | None) -> Prediction:
    """A prediction with the CWE's name, URL and catalog explanation (empty if the CWE is unknown)."""
    if cwe_id not in _EXPLAINED:
        from cyberslm.knowledge import load_knowledge

        kb = load_knowledge()
        w = kb.weakness(cwe_id) or kb.get(cwe_id)  # older NVD labels are CWE categories (CWE-264, CWE-399)
        p = Prediction(cwe_id, None)
        if w is not None:
            p.name, p.url, p.summary = w.name, w.url, _first_sentence(w.description)
            if getattr(w, "consequences", None):
                c = w.consequences[0]
                p.consequence = f"{', '.join(c.scopes)}: {', '.join(c.impacts)}"
            if getattr(w, "mitigations", None):
                p.mitigation = _first_sentence(w.mitigations[0].description)
            p.mapping = getattr(w, "mapping_usage", "")
        else:
            p.url = f"https://cwe.mitre.org/data/definitions/{cwe_id.split('-')[-1]}.html"
        _EXPLAINED[cwe_id] = p
    base = _EXPLAINED[cwe_id]
    return replace(base, probability=probability)


# -- prediction --------------------------------------------------------------------------------------------
def _as_pair(item) -> tuple[str | None, str]:
    if isinstance(item, str):
        return None, item
    return getattr(item, "id", None), getattr(item, "description", "") or ""


def iter_triage(
    items: Iterable, k: int = 3, model: str | None = None, batch_size: int | None = None, on_batch=None
) -> Iterator[TriageResult]:
    """Triage `items` (str, CveRecord or (id, description) pairs) lazily, one batch at a time."""
    if model and not model.startswith("classifier:"):
        from cyberslm.models.backend import GenerationConfig, load_backend

        backend, size = load_backend(model), batch_size or 8
        config = GenerationConfig(max_new_tokens=512, temperature=0.0)
        name = model

        def predict(texts: list[str]) -> list[tuple[list[Prediction], str | None]]:
            from cyberslm.eval.parsing import extract_cwe

            answers = backend.generate(
                [[{"role": "user", "content": RCM_PROMPT.format(desc=t)}] for t in texts], config
            )
            out = []
            for answer in answers:
                cwe = extract_cwe(answer, strict=True) or extract_cwe(answer, strict=False)
                out.append(([explain(cwe, None)] if cwe else [], answer))
            return out
    else:
        from cyberslm.models.cwe_classifier import CweClassifier

        spec = model.partition(":")[2] if model else "default"
        clf, size = CweClassifier.load(spec or "default"), batch_size or 512
        name = f"classifier:{spec or 'default'}"

        def predict(texts: list[str]) -> list[tuple[list[Prediction], str | None]]:
            return [([explain(c, round(p, 4)) for c, p in top], None) for top in clf.predict_topk(texts, k)]

    batch: list[tuple[str | None, str]] = []

    def flush() -> Iterator[TriageResult]:
        for (item_id, text), (preds, answer) in zip(batch, predict([t for _, t in batch]), strict=True):
            shown = {p.cwe_id for p in preds}
            stated = [explain(c, None) for c in find_cwes(text) if c not in shown]
            yield TriageResult(item_id, text, name, preds, answer, stated)
        if on_batch:
            on_batch(len(batch))
        batch.clear()

    for item in items:
        batch.append(item if isinstance(item, tuple) else _as_pair(item))
        if len(batch) >= size:
            yield from flush()
    if batch:
        yield from flush()


def triage(items: list, k: int = 3, model: str | None = None) -> list[TriageResult]:
    """Top-k CWEs for each CVE description or CveRecord, with grounded explanations."""
    return list(iter_triage(items, k=k, model=model))


# -- inputs ------------------------------------------------------------------------------------------------
def _column(fieldnames: list[str], wanted: Iterable[str]) -> str | None:
    lower = {f.strip().lower(): f for f in fieldnames if f}
    return next((lower[w] for w in wanted if w in lower), None)


def read_items(path: Path) -> Iterator[tuple[str | None, str]]:
    """(id, description) pairs from a text, CSV, JSONL or CVE/NVD JSON file, detected by content."""
    if path.is_dir() or path.suffix in (".gz", ".zip"):
        yield from _read_records(path)
        return
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError) as exc:
        raise CyberslmError(f"{path}: cannot read ({exc})") from exc
    first = head.lstrip()[:1]
    first_line = head.lstrip().split("\n", 1)[0]
    if first == "{" and _is_jsonl(first_line):
        yield from _read_jsonl(path)
    elif first in ("{", "["):
        yield from _read_records(path)
    elif path.suffix.lower() in (".csv", ".tsv") or _looks_like_csv(first_line):
        yield from _read_csv(path)
    else:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield None, line.strip()


def _is_jsonl(line: str) -> bool:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and "description" in row


def _looks_like_csv(line: str) -> bool:
    try:
        header = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    return len(header) > 1 and _column(header, ("description",)) is not None


def _read_jsonl(path: Path) -> Iterator[tuple[str | None, str]]:
    for n, row in read_jsonl(path):
        if not isinstance(row.get("description"), str):
            raise CyberslmError(f"{path}: line {n}: expected an object with a 'description' string")
        yield (str(row["id"]) if row.get("id") is not None else None), row["description"]


def _read_csv(path: Path) -> Iterator[tuple[str | None, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        reader = csv.DictReader(fh, dialect=dialect)
        fields = reader.fieldnames or []
        text_col = _column(fields, ("description",))
        if text_col is None:
            raise CyberslmError(
                f"{path}: CSV has no 'description' column (columns: {', '.join(fields) or 'none'})"
            )
        id_col = _column(fields, ID_COLUMNS)
        for n, row in enumerate(reader, 2):
            text = (row.get(text_col) or "").strip()
            if not text:
                raise CyberslmError(f"{path}: line {n}: empty description")
            yield (row.get(id_col) or None) if id_col else None, text


def _read_records(path: Path) -> Iterator[tuple[str | None, str]]:
    from cyberslm.data.reader import read_cves

    for record in read_cves(path):
        yield record.id, record.description


# -- outputs -----------------------------------------------------------------------------------------------
class Writer:
    """Writes results in one format to a text stream, flushing after every batch."""

    def __init__(self, fmt: str, stream, console=None):
        self.fmt, self.stream, self.console, self.count = fmt, stream, console, 0
        if fmt == "csv":
            self.csv = csv.writer(stream)
            self.csv.writerow(
                [
                    "id",
                    "description",
                    "rank",
                    "cwe_id",
                    "name",
                    "probability",
                    "url",
                    "summary",
                    "consequence",
                    "mitigation",
                    "mapping",
                ]
            )
        elif fmt == "json":
            stream.write("[")

    def write(self, results: list[TriageResult]) -> None:
        if self.fmt == "table":
            self._table(results)
        for r in results if self.fmt != "table" else ():
            if self.fmt == "jsonl":
                self.stream.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
            elif self.fmt == "json":
                self.stream.write(
                    ("," if self.count else "") + "\n" + json.dumps(r.to_dict(), ensure_ascii=False)
                )
            else:  # one row per prediction, then one per CWE the text names that was not predicted
                ranked = list(enumerate(r.predictions, 1)) if r.predictions else [(1, Prediction("", None))]
                for rank, p in ranked + [("stated", p) for p in r.stated]:
                    self.csv.writerow(
                        [
                            r.id or "",
                            r.description,
                            rank,
                            p.cwe_id,
                            p.name,
                            "" if p.probability is None else p.probability,
                            p.url,
                            p.summary,
                            p.consequence,
                            p.mitigation,
                            p.mapping,
                        ]
                    )
            self.count += 1
        self.stream.flush()

    def _table(self, results: list[TriageResult]) -> None:
        from rich.table import Table

        table = Table(show_lines=True)
        for col, style in (("CVE / description", None), ("CWE", "bold cyan"), ("prob", None), ("why", None)):
            table.add_column(col, style=style, overflow="fold")
        for r in results:
            label = f"[bold]{r.id}[/bold]\n{r.description}" if r.id else r.description
            label = label if len(label) < 240 else label[:239] + "…"
            if not r.predictions:
                table.add_row(label, "-", "", "(no CWE in the answer)")
            for i, p in enumerate(r.predictions):
                why = f"[b]{p.name}[/b]\n{p.summary}"
                if i == 0 and p.consequence:
                    why += f"\n[dim]consequence:[/dim] {p.consequence}"
                if i == 0 and p.mitigation:
                    why += f"\n[dim]mitigation:[/dim] {p.mitigation}"
                if p.mapping in ("Discouraged", "Prohibited"):  # MITRE asks for a more precise CWE than this one
                    why += f"\n[dim]mapping:[/dim] {p.mapping} by MITRE; a more specific child CWE may fit"
                prob = "" if p.probability is None else f"{p.probability:.2f}"
                table.add_row(label if i == 0 else "", p.cwe_id, prob, why)
            for p in r.stated:
                why = f"[b]{p.name}[/b]\n" if p.name else ""
                table.add_row("", p.cwe_id, "", why + "[dim]named in the description; not predicted[/dim]")
        self.console.print(table)
        self.count += len(results)

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n" if self.count else "]\n")
        self.stream.flush()


def _is_file(arg: str) -> bool:
    try:
        return Path(arg).exists()
    except (OSError, ValueError):  # a long description is not a valid file name
        return False


def _inputs(args: list[str]) -> tuple[Iterator[tuple[str | None, str]], list[Path]]:
    """The (id, description) stream for the CLI arguments, and the files among them (for progress)."""
    if args == ["-"]:
        return ((None, line.strip()) for line in sys.stdin if line.strip()), []
    files = [Path(a) for a in args if _is_file(a)]
    if files and len(files) != len(args):
        missing = next(a for a in args if not _is_file(a))
        raise CyberslmError(f"{missing}: no such file (mixing files and free text is not supported)")
    if files:

        def stream() -> Iterator[tuple[str | None, str]]:
            for path in files:
                yield from read_items(path)

        return stream(), files
    texts = [a for a in args if a.strip()]
    if texts and not any(" " in t for t in texts):  # unquoted words: one description
        texts = [" ".join(texts)]
    return ((None, t) for t in texts), []


def triage_command(
    inputs: list[str] = typer.Argument(
        ...,
        help="Descriptions (quote each), '-' for stdin lines, or files: "
        ".txt (one per line), .csv (description[,id]), .jsonl, CVE/NVD JSON.",
    ),
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, help="CWEs per description."),
    fmt: str = typer.Option(
        None,
        "--format",
        "-f",
        help="table | json | jsonl | csv (default: table on a "
        "terminal, else jsonl; with -o, from its suffix).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write results to this file instead of stdout."),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="Backend spec (hf:..., openai:..., vllm:...) instead "
        "of the classifier; it answers the CTI-Bench RCM prompt.",
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", help="Descriptions per batch (default 512, 8 for --model)."
    ),
) -> None:
    """Map CVE descriptions to the most likely CWEs, with probabilities and explanations from the CWE catalog."""
    from rich.console import Console

    if fmt is None:
        suffix = out.suffix.lstrip(".").lower() if out else ""
        fmt = suffix if suffix in FORMATS[1:] else ("jsonl" if out or not sys.stdout.isatty() else "table")
    if fmt not in FORMATS:
        raise CyberslmError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    items, files = _inputs(inputs)
    stream = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout  # noqa: SIM115
    console = Console(file=stream if out else None, width=None if not out else 160)
    writer = Writer(fmt, stream, console)
    err = Console(stderr=True)
    progress = None
    if files and err.is_terminal:
        from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("triage {task.description}"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        task = progress.add_task(", ".join(f.name for f in files)[:60], total=None)
        progress.start()
    try:
        batch: list[TriageResult] = []
        on_batch = (lambda n: progress.advance(task, n)) if progress else None
        for result in iter_triage(items, k=top_k, model=model, batch_size=batch_size, on_batch=on_batch):
            batch.append(result)
            if len(batch) >= (batch_size or (8 if model else 512)):
                writer.write(batch)
                batch = []
        if batch:
            writer.write(batch)
        if writer.count == 0:
            raise CyberslmError("no descriptions to triage")
    finally:
        if progress:
            progress.stop()
        writer.close()
        if out:
            stream.close()
    if out:
        err.print(f"wrote {writer.count} results to {out}")


__all__ = ["Prediction", "TriageResult", "iter_triage", "read_items", "triage", "triage_command", "explain"]
