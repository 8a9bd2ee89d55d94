"""Threat-actor alias and related-group tables for CTI-TAA scoring, kept as JSON (never pickles).

"correct": the predicted actor is the GT actor or one of its aliases (alias links are followed
transitively). "plausible": the predicted actor is connected to GT through a related-group link.
The default table comes from ATT&CK groups in the knowledge base (names, aliases, related groups);
a user's own tables (`--taa-alias`, `--taa-related`, JSON {name: [names]}) are merged on top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cyberslm.errors import CyberslmError
from cyberslm.eval.parsing import normalize_actor

_NONE = {"", "nan", "none", "null"}


def read_table(path: str | Path) -> dict[str, list[str]]:
    """A JSON object mapping an actor name to a list of names."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CyberslmError(f"{path}: cannot read alias table as JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise CyberslmError(f"{path}: expected a JSON object of name -> list of names")
    return {str(k): [str(x) for x in v] for k, v in data.items()}


@dataclass
class ActorTable:
    alias: dict[str, set[str]] = field(default_factory=dict)
    related: dict[str, set[str]] = field(default_factory=dict)

    def add(self, table: dict[str, list[str]], kind: str) -> None:
        target = self.alias if kind == "alias" else self.related
        for key, names in table.items():
            k = normalize_actor(key)
            target.setdefault(k, set()).update(n for n in map(normalize_actor, names) if n not in _NONE)

    @property
    def names(self) -> set[str]:
        """Every actor name the tables know (used to find an actor mentioned anywhere in a response)."""
        out = set(self.alias) | set(self.related)
        for values in (*self.alias.values(), *self.related.values()):
            out |= values
        return {n for n in out if len(n) > 2}

    def aliases_of(self, name: str) -> set[str]:
        """The alias component of `name`: every name reachable through alias links, both directions."""
        edges: dict[str, set[str]] = {}
        for key, values in self.alias.items():
            for v in values:
                edges.setdefault(key, set()).add(v)
                edges.setdefault(v, set()).add(key)
        seen, todo = {name}, [name]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def judge(self, predicted: str | None, gt: str) -> str:
        """'correct', 'plausible' or 'wrong'."""
        if not predicted:
            return "wrong"
        pred, truth = normalize_actor(predicted), normalize_actor(gt)
        truth_group = self.aliases_of(truth)
        if pred in truth_group:
            return "correct"
        pred_group = self.aliases_of(pred)
        for a, b in ((truth_group, pred_group), (pred_group, truth_group)):
            linked = set().union(*(self.related.get(n, set()) for n in a))
            if linked & b:
                return "plausible"
        return "wrong"


def knowledge_table() -> ActorTable:
    """Alias/related tables from ATT&CK groups in the knowledge base (empty if it is not available)."""
    table = ActorTable()
    try:
        from cyberslm.knowledge import load_knowledge

        kb = load_knowledge()
        groups = list(kb.entries(kind="group"))
    except (ImportError, AttributeError, CyberslmError):
        return table
    # ATT&CK has no group-to-group links, so a group named in another group's description (e.g.
    # SideCopy "shares infrastructure with Transparent Tribe") counts as related.
    names = {g.name: g for g in groups if len(g.name) > 3}
    for group in groups:
        table.add({group.name: [*group.aliases, group.id]}, "alias")
        text = group.description.lower()
        related = [n for n in names if n != group.name and n.lower() in text]
        if related:
            table.add({group.name: related}, "related")
    return table


def load_actor_table(alias_path: str | Path | None = None, related_path: str | Path | None = None) -> ActorTable:
    """Knowledge-derived tables plus the user's JSON tables."""
    table = knowledge_table()
    if alias_path:
        table.add(read_table(alias_path), "alias")
    if related_path:
        table.add(read_table(related_path), "related")
    return table
