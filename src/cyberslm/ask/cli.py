"""`cyberslm ask`: grounded answers to CTI questions from the local MITRE knowledge.

Heavy imports (numpy, sklearn, the knowledge) happen inside the command so `cyberslm --help` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from cyberslm.errors import CyberslmError


def ask_command(
    question: str = typer.Argument(None, help='Question, with options as "A) ..." lines for a multiple-choice one.'),
    file: Path = typer.Option(None, "--file", "-f", help="Questions: CTI-Bench MCQ .tsv, .jsonl, or text (blank-line separated)."),
    model: str = typer.Option(None, "--model", "-m", help="Answer with a language model (load_backend spec, e.g. hf:smollm2) grounded on the passages."),
    k: int = typer.Option(5, "--k", "-k", min=1, max=50, help="Passages to retrieve."),
    dense: bool = typer.Option(None, "--dense/--no-dense", help="MiniLM dense retrieval: --dense builds the embeddings (minutes on a small CPU); default uses them when cached."),
    fmt: str = typer.Option("rich", "--format", help="rich | json | jsonl"),
) -> None:
    """Answer a CTI question from MITRE ATT&CK, CWE and CAPEC, citing the passages used."""
    from cyberslm.ask.answerer import answer
    from cyberslm.ask.questions import parse_question, read_questions
    from cyberslm.ask.retrieval import load_index

    if fmt not in ("rich", "json", "jsonl"):
        raise CyberslmError(f"--format {fmt!r}: expected rich, json or jsonl")
    if (question is None) == (file is None):
        raise CyberslmError("ask: give either a QUESTION or --file (one of them)")
    questions = read_questions(file) if file else [parse_question(question)]
    index = load_index(dense=dense)
    answers, correct, graded, started = [], 0, 0, time.perf_counter()
    for q in questions:
        a = answer(q.text, q.options, model=model, k=k, index=index)
        row = a.to_dict()
        if q.gt:
            row["gt"], graded, correct = q.gt, graded + 1, correct + (a.letter == q.gt)
        answers.append((a, row))
        if fmt == "jsonl":
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif fmt == "rich":
            _print_rich(a, q.gt)
    if fmt == "json":
        rows = [row for _, row in answers]
        sys.stdout.write(json.dumps(rows[0] if question else rows, ensure_ascii=False, indent=2) + "\n")
    if graded and fmt == "rich":
        ms = 1000 * (time.perf_counter() - started) / len(questions)
        typer.echo(f"accuracy {correct}/{graded} = {correct / graded:.3f}  ({ms:.0f} ms/question)")


def _print_rich(a, gt: str | None) -> None:
    from rich.console import Console, Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

    lines = []
    if a.options:
        for letter, text in a.options.items():
            mark = "→ " if letter == a.letter else "  "
            lines.append(Text(f"{mark}{letter}) {text}", style="bold green" if letter == a.letter else ""))
    head = f"[bold]{escape(a.answer)}[/bold]"
    if a.confidence is not None:
        head += f"   confidence {a.confidence:.2f}"
    if gt:
        head += "   ✓" if a.letter == gt else f"   ✗ (expected {gt})"
    sources = "\n".join(
        f"[cyan][{escape(s.id)}][/cyan] {escape(s.name)} ({s.kind}) {escape(s.url)}" for s in a.sources
    )
    body = Group(*lines, Text(""), Text.from_markup(head), Text(""),
                 Text.from_markup("[dim]sources[/dim]\n" + (sources or "none")))
    Console().print(Panel(body, title=escape(a.question[:100]), subtitle=a.model, expand=True))
