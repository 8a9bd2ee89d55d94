"""Scorers: one trial's responses to one task -> metrics.

Every scorer returns a flat dict of numeric metrics plus `unparseable` (item indices whose strict
answer could not be read; they count as wrong under foundation-sec and are left out of the
denominator under ctibench) and `n` (items scored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from cyberslm.eval.taa import ActorTable


@dataclass
class ScoringContext:
    """What some scorers need beyond the responses: alias tables (TAA), the CWE catalog (RCM)."""

    actors: ActorTable = field(default_factory=ActorTable)
    kb: Any = None  # cyberslm.knowledge knowledge base, or None when it is not available


def _denominator(n: int, unparseable: int, protocol) -> int:
    return n if protocol.unparseable_in_denominator else n - unparseable


def _ratio(num: float, den: int) -> float:
    return num / den if den else 0.0


def score_exact(task, items, responses, protocol, context) -> dict:
    """Accuracy by exact, case-insensitive match with GT: strict (final line) and lenient (anywhere)."""
    strict = [task.parse(r, True) for r in responses]
    lenient = [task.parse(r, False) for r in responses]
    unparseable = [it.index for it, a in zip(items, strict, strict=True) if a is None]
    hits = sum(a is not None and a.upper() == it.gt.upper() for it, a in zip(items, strict, strict=True))
    lenient_hits = sum(a is not None and a.upper() == it.gt.upper() for it, a in zip(items, lenient, strict=True))
    den = _denominator(len(items), len(unparseable), protocol)
    lenient_den = _denominator(len(items), sum(a is None for a in lenient), protocol)
    return {
        "accuracy": _ratio(hits, den),
        "lenient_accuracy": _ratio(lenient_hits, lenient_den),
        "n": len(items),
        "unparseable": unparseable,
    }


def _cwe_known(kb, cwe_id: str, _cache: dict = {}) -> bool:  # noqa: B006 - a per-process memo
    key = (id(kb), cwe_id)
    if key not in _cache:
        _cache[key] = kb.weakness(cwe_id) is not None
    return _cache[key]


def score_rcm(task, items, responses, protocol, context) -> dict:
    """Exact-match accuracy plus catalog checks and hierarchy credit (direct parent/child, view 1000)."""
    metrics = score_exact(task, items, responses, protocol, context)
    kb = context.kb
    if kb is None:
        metrics["hierarchy_accuracy"] = None
        metrics["unknown_cwe"] = None
        return metrics
    predicted = [task.parse(r, True) for r in responses]
    unknown = sorted({p for p in predicted if p and not _cwe_known(kb, p)})
    credit = 0
    for item, pred in zip(items, predicted, strict=True):
        if pred is None:
            continue
        gt = item.gt.upper()
        if pred == gt or pred in kb.cwe_parents(gt) or pred in kb.cwe_children(gt):
            credit += 1
    unparseable = len(metrics["unparseable"])
    metrics["hierarchy_accuracy"] = _ratio(credit, _denominator(len(items), unparseable, protocol))
    metrics["unknown_cwe_count"] = sum(1 for p in predicted if p in set(unknown))
    metrics["unknown_cwe"] = unknown
    return metrics


def cvss_base_score(vector: str) -> float:
    from cvss import CVSS3

    return float(CVSS3(vector).base_score)


def score_vsp(task, items, responses, protocol, context) -> dict:
    """Mean absolute deviation of CVSS v3 base scores over the parseable answers (lower is better)."""
    out: dict[str, Any] = {"n": len(items)}
    for label, strict in (("mad", True), ("lenient_mad", False)):
        deviations, unparseable = [], []
        for item, response in zip(items, responses, strict=True):
            vector = task.parse(response, strict)
            if vector is None:
                unparseable.append(item.index)
                continue
            deviations.append(abs(cvss_base_score(vector) - cvss_base_score(item.gt)))
        out[label] = mean(deviations) if deviations else None
        if strict:
            out["unparseable"] = unparseable
    return out


def _prf(pred: set[str], gold: set[str]) -> tuple[float, float, float]:
    tp = len(pred & gold)
    p, r = _ratio(tp, len(pred)), _ratio(tp, len(gold))
    return p, r, _ratio(2 * p * r, p + r)


def score_ate(task, items, responses, protocol, context) -> dict:
    """Precision, recall and F1 of main technique ids, averaged over items (macro)."""
    out: dict[str, Any] = {"n": len(items)}
    for prefix, strict in (("", True), ("lenient_", False)):
        rows, unparseable = [], []
        for item, response in zip(items, responses, strict=True):
            gold = {t.split(".")[0].strip().upper() for t in item.gt.split(",") if t.strip()}
            pred = task.parse(response, strict)
            if pred is None:
                unparseable.append(item.index)
                if protocol.unparseable_in_denominator:
                    rows.append((0.0, 0.0, 0.0))
                continue
            rows.append(_prf(pred, gold))
        for i, name in enumerate(("precision", "recall", "f1")):
            out[prefix + name] = mean(r[i] for r in rows) if rows else 0.0
        if strict:
            out["unparseable"] = unparseable
    return out


def score_taa(task, items, responses, protocol, context) -> dict:
    """Correct (GT or alias) and correct+plausible (related group) attribution accuracy."""
    out: dict[str, Any] = {"n": len(items)}
    known = context.actors.names
    from cyberslm.eval.parsing import extract_actor

    for prefix, strict in (("", True), ("lenient_", False)):
        verdicts, unparseable = [], []
        for item, response in zip(items, responses, strict=True):
            actor = extract_actor(response, strict=strict, known=known)
            if actor is None:
                unparseable.append(item.index)
                if not protocol.unparseable_in_denominator:
                    continue
            verdicts.append(context.actors.judge(actor, item.gt))
        den = len(verdicts)
        out[prefix + "correct"] = _ratio(verdicts.count("correct"), den)
        out[prefix + "plausible"] = _ratio(verdicts.count("correct") + verdicts.count("plausible"), den)
        if strict:
            out["unparseable"] = unparseable
    return out
