"""`cyberslm kb ...`: show, search, import and describe the offline MITRE knowledge."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cyberslm.errors import CyberslmError
from cyberslm.knowledge.base import import_file, load_knowledge
from cyberslm.knowledge.model import Entry, Weakness

app = typer.Typer(no_args_is_help=True)
console = Console()
MAX_RELATED = 8  # per relationship type in the panel; --json has them all


def _short(text: str, limit: int = 300) -> str:
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _value(v) -> str:
    if isinstance(v, dict):  # e.g. CAPEC consequences: {scope: [impacts]}
        return "; ".join(f"{k.replace('_', ' ')}: {_value(x)}" for k, x in v.items())
    return " | ".join(map(str, v)) if isinstance(v, list) else str(v)


def _section(title: str, lines: list[str]) -> list:
    if not lines:
        return []
    return [Text(""), Text(title, style="bold cyan"), *[Text(f"  {line}") for line in lines]]


def _weakness_body(kb, w: Weakness) -> list:
    usage = f" · mapping: {w.mapping_usage}" if w.mapping_usage else ""
    body = [Text(f"{w.abstraction} · {w.status}{usage} · {w.source}", style="dim"), Text(""), Text(w.description)]
    if w.extended_description:
        ext = w.extended_description
        body += [Text(""), Text(ext if len(ext) < 900 else ext[:900] + " …", style="italic")]
    body += _section("Consequences", [f"{', '.join(c.scopes)}: {'; '.join(c.impacts)}" for c in w.consequences])
    body += _section("Mitigations", [f"[{', '.join(m.phases) or '-'}] {_short(m.description)}"
                                     for m in w.mitigations])
    parents, children = kb.cwe_parents(w.id), kb.cwe_children(w.id)
    related = [f"ChildOf (CWE-1000): {', '.join(parents)}"] if parents else []
    related += [f"Children (CWE-1000): {', '.join(children[:20])}"] if children else []
    related += [f"{r.nature} {r.cwe_id} (view {r.view_id})" for r in w.related
                if not (r.nature == "ChildOf" and r.view_id == "1000")]
    related += [f"CAPEC: {', '.join(w.capec_ids)}"] if w.capec_ids else []
    body += _section("Related", related)
    body += _section("Observed examples", [f"{x['reference']}: {x['description']}" for x in w.observed_examples[:5]])
    return body


def _entry_body(kb, e: Entry) -> list:
    body = [Text(f"{e.kind} · {e.source}", style="dim"), Text(""), Text(e.description or "(no description)")]
    if e.aliases:
        body += _section("Aliases", [", ".join(e.aliases)])
    details = [f"{k}: {_value(v)}" for k, v in e.extra.items()
               if k not in ("mitigations", "detection") and v not in ("", [], {}, None)]
    body += _section("Details", details)
    body += _section("Detection", [e.extra["detection"]] if e.extra.get("detection") else [])
    body += _section("Mitigations", [_short(m) for m in e.extra.get("mitigations", [])] if e.kind == "capec" else [])
    groups: dict[str, list[str]] = {}
    for rel, other in kb.related(e.id):
        arrow = "→" if rel.source_id == e.id else "←"
        groups.setdefault(f"{arrow} {rel.type}", []).append(f"{other.id} {other.name}")
    lines = [f"{label} ({len(items)}): {'; '.join(items[:MAX_RELATED])}{' …' if len(items) > MAX_RELATED else ''}"
             for label, items in sorted(groups.items())]
    body += _section("Related", lines)
    return body


def entry_json(kb, e: Entry) -> dict:
    data = asdict(e)
    data["related"] = [{"type": r.type, "source_id": r.source_id, "target_id": r.target_id, "name": o.name,
                        "description": r.description} for r, o in kb.related(e.id)]
    if isinstance(e, Weakness):
        data["parents"], data["children"] = kb.cwe_parents(e.id), kb.cwe_children(e.id)
    return data


@app.command("show")
def show(
    entry_id: str = typer.Argument(..., help="CWE-79, T1059.001, TA0002, G0016, S0154, M1036, CAPEC-66, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print the entry and its relationships as JSON."),
) -> None:
    """Show one entry: description, consequences, mitigations and what it is related to."""
    kb = load_knowledge()
    entry = kb.get(entry_id)
    if entry is None:
        raise CyberslmError(f"unknown id {entry_id!r} (try `cyberslm kb search`)")
    if as_json:
        print(json.dumps(entry_json(kb, entry), ensure_ascii=False, indent=2))
        return
    body = _weakness_body(kb, entry) if isinstance(entry, Weakness) else _entry_body(kb, entry)
    body += [Text(""), Text(entry.url, style="blue underline")] if entry.url else []
    console.print(Panel(Group(*body), title=f"[bold]{entry.id}[/bold] {entry.name}", title_align="left"))


@app.command("search")
def search(
    query: str = typer.Argument(..., help="Words to look for, e.g. 'sql injection'."),
    kind: str = typer.Option(None, "--kind", help="Only this kind: cwe, technique, group, software, capec, ..."),
    limit: int = typer.Option(10, "--limit", "-k", min=1, help="How many results."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Lexical search over names, aliases and descriptions."""
    results = load_knowledge().search(query, k=limit, kind=kind)
    if as_json:
        print(json.dumps([{"id": e.id, "kind": e.kind, "name": e.name, "score": s, "url": e.url}
                          for e, s in results], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"kb search: {query}")
    for col in ("id", "kind", "name", "score"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for e, s in results:
        table.add_row(e.id, e.kind, e.name, f"{s:.2f}")
    console.print(table)


@app.command("import")
def import_(
    files: list[Path] = typer.Argument(..., help="CWE XML (.xml/.zip), ATT&CK or CAPEC STIX 2.1 bundle (.json/.gz)."),
    include_deprecated: bool = typer.Option(False, help="Keep revoked and deprecated STIX objects."),
) -> None:
    """Import official MITRE releases; they are layered over the bundled defaults."""
    for path in files:
        bundle, stored = import_file(path, include_deprecated=include_deprecated)
        kinds = ", ".join(f"{n} {k}" for k, n in Counter(e.kind for e in bundle.entries).most_common())
        console.print(f"imported {path}: [bold]{bundle.source}[/bold]: {len(bundle.entries)} entries ({kinds}), "
                      f"{len(bundle.relationships)} relationships -> {stored}", highlight=False, soft_wrap=True)
    console.print(f"knowledge version {load_knowledge().version()}")


@app.command("info")
def info(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Sources, versions and counts per kind."""
    kb = load_knowledge()
    rows = []
    for family, bundles in kb.bundles().items():
        for source, bundle in zip([s for s in kb.sources if s.family == family], bundles, strict=True):
            rows.append({"family": family, "source": bundle.source, "origin": source.name, "path": source.path,
                         "entries": len(bundle.entries), "relationships": len(bundle.relationships)})
    kinds = dict(Counter(e.kind for e in kb.entries()).most_common())
    if as_json:
        print(json.dumps({"version": kb.version(), "sources": rows, "kinds": kinds}, indent=2))
        return
    table = Table(title=f"knowledge version {kb.version()}")
    for col in ("family", "source", "origin", "entries", "relationships"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["family"], r["source"], r["origin"], str(r["entries"]), str(r["relationships"]))
    console.print(table)
    console.print("entries per kind (after layering): " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
