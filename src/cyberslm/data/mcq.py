"""Multiple-choice questions generated from the MITRE knowledge, in the CTI-Bench MCQ style.

Each item asks about one subject entry (a technique, a CWE, a group, ...), has one answer taken from
the knowledge and three distractors of the same family (other mitigations, sibling sub-techniques,
other CWEs' consequences, ...), and carries the ids of every entry it was made from. Generation is
deterministic given a seed: every item draws from its own Random seeded by (seed, template, subject).

`split_mcq` keeps a dev set apart by entry id, hash-based: an item is dev when its subject hashes to
dev; an item is train only when none of its source ids hashes to dev. Sub-techniques hash with their
parent (T1548.002 with T1548), so SFT data built from the train split never contains a dev entry.
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

LETTERS = "ABCD"
PROMPT = (
    "You are given a multiple-choice question (MCQ) from a Cyber Threat Intelligence (CTI) knowledge "
    "benchmark dataset. Your task is to choose the best option among the four provided. Return your answer "
    "as a single uppercase letter: A, B, C, or D.  **Question:** {question}  **Options:** {options}  "
    "**Important:** The last line of your answer should contain only the single letter corresponding to "
    "the best option, with no additional text. "
)
MAX_OPTION_CHARS = 200
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://[^)]*)\)")
_CITATION = re.compile(r"\(Citation:[^)]*(?:\)|$)")


# -- text helpers --------------------------------------------------------------------------------
def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _CITATION.sub("", _MD_LINK.sub(r"\1", text or ""))).strip()


def first_sentence(text: str, limit: int = 300) -> str:
    """The first sentence of a description, cut at a word boundary if longer than `limit`."""
    text = _clean(text)
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".").strip()
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0] + " ..."
    return sentence


def _mask(text: str, names: list[str], placeholder: str) -> str:
    for name in sorted({n for n in names if n and len(n) > 2}, key=len, reverse=True):
        text = re.sub(re.escape(name), placeholder, text, flags=re.IGNORECASE)
    return text


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def _option(text: str) -> str:
    text = _clean(text)
    return text if len(text) <= MAX_OPTION_CHARS else text[:MAX_OPTION_CHARS].rsplit(" ", 1)[0] + " ..."


def _siblings_first(answer_name: str, pool: list[str], preferred: list[str], rng: random.Random, n: int = 3):
    """n distractors: preferred (same parent / similar) candidates first, then the rest, never the answer."""
    out: list[str] = []
    seen = {answer_name.lower()}
    for group in (preferred, pool):
        group = [g for g in group if g.lower() not in seen]
        rng.shuffle(group)
        for g in group:
            if len(out) == n:
                return out
            if g.lower() not in seen:
                seen.add(g.lower())
                out.append(g)
    return out if len(out) == n else None


def make_item(template: str, subject: str, source_ids: list[str], question: str, answer: str,
              distractors: list[str] | None, url: str, rng: random.Random) -> dict | None:
    """Shuffle answer and distractors into A-D and add the CTI-Bench prompt; None if incomplete."""
    if not distractors or len(distractors) != 3 or not answer:
        return None
    options = [answer, *distractors]
    rng.shuffle(options)
    lettered = dict(zip(LETTERS, options, strict=True))
    inline = " ".join(f"{x}) {t}" for x, t in lettered.items())
    return {
        "id": f"{template}:{'+'.join(source_ids)}",
        "template": template,
        "subject": subject,
        "source_ids": source_ids,
        "url": url,
        "question": question,
        "options": lettered,
        "answer": LETTERS[options.index(answer)],
        "prompt": PROMPT.format(question=question, options=inline),
    }


# -- templates -------------------------------------------------------------------------------------
class _Ctx:
    """Per-run lookups shared by the templates (names by kind, relationships by type)."""

    def __init__(self, kb):
        self.kb = kb
        self.by_kind: dict[str, list] = {}
        for e in kb.entries():
            self.by_kind.setdefault(e.kind, []).append(e)
        for entries in self.by_kind.values():
            entries.sort(key=lambda e: e.id)
        self.rels: dict[str, list] = {}
        for r in kb.relationships:
            self.rels.setdefault(r.type, []).append(r)
        for rels in self.rels.values():
            rels.sort(key=lambda r: (r.source_id, r.target_id))
        self.mitigations_of: dict[str, set[str]] = {}
        for r in self.rels.get("mitigates", []):
            self.mitigations_of.setdefault(r.target_id, set()).add(r.source_id)
        self.users_of: dict[str, set[str]] = {}
        for r in self.rels.get("uses", []):
            self.users_of.setdefault(r.target_id, set()).add(r.source_id)

    def names(self, kind: str, exclude: set[str] = frozenset()) -> list[str]:
        return sorted({e.name for e in self.by_kind.get(kind, []) if e.id not in exclude and e.name})


def _techniques(ctx: _Ctx, rng_for) -> Iterator[dict]:
    techniques = ctx.by_kind.get("technique", [])
    for t in techniques:
        if not t.description:
            continue
        rng = rng_for("technique", t.id)
        stem = _mask(first_sentence(t.description), [t.name], "this technique")
        parent = t.id.split(".")[0]
        siblings = [x.name for x in techniques if x.id != t.id and x.id.split(".")[0] == parent]
        tactics = t.extra.get("tactics", "")
        same_tactic = [x.name for x in techniques if x.id != t.id and tactics and x.extra.get("tactics") == tactics]
        preferred = siblings + rng.sample(same_tactic, min(len(same_tactic), 3))
        question = f"Which ATT&CK technique is described as follows: {_lower_first(stem)}?"
        yield make_item("technique", t.id, [t.id], question, t.name,
                        _siblings_first(t.name, ctx.names("technique"), preferred, rng), t.url, rng)


def _mitigations(ctx: _Ctx, rng_for) -> Iterator[dict]:
    for r in ctx.rels.get("mitigates", []):
        m, t = ctx.kb.get(r.source_id), ctx.kb.get(r.target_id)
        if m is None or t is None or not r.description or m.kind != "mitigation":
            continue
        rng = rng_for("mitigation", f"{t.id}/{m.id}")
        detail = _lower_first(_mask(first_sentence(r.description), [m.name], "it"))
        question = f"Which mitigation for {t.name} ({t.id}) involves the following: {detail}?"
        pool = ctx.names("mitigation", exclude=ctx.mitigations_of.get(t.id, set()))
        yield make_item("mitigation", t.id, [t.id, m.id], question, m.name,
                        _siblings_first(m.name, pool, [], rng), t.url, rng)


def _mitigation_ids(ctx: _Ctx, rng_for) -> Iterator[dict]:
    """'What does mitigation M1028 suggest for technique X?' with other mitigations' advice as distractors."""
    by_target: dict[str, list] = {}
    for r in ctx.rels.get("mitigates", []):
        if r.description:
            by_target.setdefault(r.target_id, []).append(r)
    all_advice = sorted({_option(first_sentence(r.description)) for rs in by_target.values() for r in rs})
    for target, rels in sorted(by_target.items()):
        t = ctx.kb.get(target)
        if t is None:
            continue
        for r in rels:
            rng = rng_for("mitigation-id", f"{target}/{r.source_id}")
            answer = _option(first_sentence(r.description))
            preferred = [_option(first_sentence(o.description)) for o in rels if o.source_id != r.source_id]
            question = f"What does mitigation {r.source_id} suggest against {t.name} ({t.id})?"
            yield make_item("mitigation-id", target, [target, r.source_id], question, answer,
                            _siblings_first(answer, all_advice, preferred, rng), t.url, rng)


def _detections(ctx: _Ctx, rng_for) -> Iterator[dict]:
    analytics_of: dict[str, list[str]] = {}
    for r in ctx.rels.get("has-analytic", []):
        analytics_of.setdefault(r.source_id, []).append(r.target_id)
    advice: dict[str, str] = {}
    for a in ctx.by_kind.get("analytic", []):
        if a.description:
            advice[a.id] = _option(first_sentence(a.description))
    pool = sorted(set(advice.values()))
    for r in ctx.rels.get("detects", []):
        t, det = ctx.kb.get(r.target_id), ctx.kb.get(r.source_id)
        mine = [a for a in analytics_of.get(r.source_id, []) if a in advice]
        if t is None or det is None or not mine:
            continue
        rng = rng_for("detection", f"{t.id}/{det.id}")
        analytic = rng.choice(mine)
        own = {advice[a] for a in mine}
        question = f"Which of the following is a recommended way to detect {t.name} ({t.id})?"
        distractors = _siblings_first(advice[analytic], [p for p in pool if p not in own], [], rng)
        yield make_item("detection", t.id, [t.id, det.id, analytic], question, advice[analytic],
                        distractors, t.url, rng)


def _procedures(ctx: _Ctx, rng_for) -> Iterator[dict]:
    words = {"group": "threat group", "software": "software", "campaign": "campaign"}
    for r in ctx.rels.get("uses", []):
        user, t = ctx.kb.get(r.source_id), ctx.kb.get(r.target_id)
        if user is None or t is None or user.kind not in words or not r.description:
            continue
        if t.kind != "technique":
            continue
        rng = rng_for("procedure", f"{user.id}/{t.id}")
        placeholder = f"this {words[user.kind]}"
        detail = _mask(first_sentence(r.description), [user.name, *user.aliases], placeholder)
        if placeholder not in detail:  # the description must be about the user to ask who it is
            continue
        question = (f"According to ATT&CK procedure examples for {t.name} ({t.id}), which {words[user.kind]} "
                    f"matches this description: {detail}?")
        pool = ctx.names(user.kind, exclude=ctx.users_of.get(t.id, set()))
        yield make_item("procedure", user.id, [user.id, t.id], question, user.name,
                        _siblings_first(user.name, pool, [], rng), user.url, rng)


def _weaknesses(ctx: _Ctx, rng_for) -> Iterator[dict]:
    cwes = [w for w in ctx.by_kind.get("cwe", []) if hasattr(w, "consequences")]
    impacts = sorted({i for w in cwes for c in w.consequences for i in c.impacts if i != "Other"})
    advice = sorted({_option(first_sentence(m.description)) for w in cwes for m in w.mitigations})
    for w in cwes:
        label = f"{w.id} ({w.name})"
        own_impacts = sorted({i for c in w.consequences for i in c.impacts if i != "Other"})
        if own_impacts:
            rng = rng_for("cwe-consequence", w.id)
            answer = rng.choice(own_impacts)
            pool = [i for i in impacts if i not in own_impacts]
            yield make_item("cwe-consequence", w.id, [w.id], f"Which impact is a common consequence of {label}?",
                            answer, _siblings_first(answer, pool, [], rng), w.url, rng)
        own_advice = sorted({_option(first_sentence(m.description)) for m in w.mitigations})
        if own_advice:
            rng = rng_for("cwe-mitigation", w.id)
            answer = rng.choice(own_advice)
            pool = [a for a in advice if a not in own_advice]
            yield make_item("cwe-mitigation", w.id, [w.id], f"Which mitigation is recommended for {label}?",
                            answer, _siblings_first(answer, pool, [], rng), w.url, rng)
        if w.description:
            rng = rng_for("cwe-description", w.id)
            stem = _mask(first_sentence(w.description), [w.name], "the weakness")
            family = [*ctx.kb.cwe_parents(w.id), *ctx.kb.cwe_children(w.id)]
            for p in ctx.kb.cwe_parents(w.id):
                family += ctx.kb.cwe_children(p)
            preferred = [e.name for e in map(ctx.kb.get, family) if e is not None and e.id != w.id]
            yield make_item("cwe-description", w.id, [w.id],
                            f"Which CWE weakness matches this description: {_lower_first(stem)}?", w.name,
                            _siblings_first(w.name, ctx.names("cwe"), preferred, rng), w.url, rng)
        capecs = [c for c in map(ctx.kb.get, w.capec_ids) if c is not None]
        if capecs:
            rng = rng_for("cwe-capec", w.id)
            c = rng.choice(capecs)
            pool = ctx.names("capec", exclude=set(w.capec_ids))
            yield make_item("cwe-capec", w.id, [w.id, c.id], f"Which CAPEC attack pattern is related to {label}?",
                            c.name, _siblings_first(c.name, pool, [], rng), w.url, rng)


def _capecs(ctx: _Ctx, rng_for) -> Iterator[dict]:
    for c in ctx.by_kind.get("capec", []):
        if not c.description:
            continue
        rng = rng_for("capec", c.id)
        stem = _mask(first_sentence(c.description), [c.name], "this attack pattern")
        yield make_item("capec", c.id, [c.id], f"Which CAPEC attack pattern is described as follows: "
                        f"{_lower_first(stem)}?", c.name, _siblings_first(c.name, ctx.names("capec"), [], rng),
                        c.url, rng)


TEMPLATES: dict[str, Callable] = {
    "technique": _techniques,
    "mitigation": _mitigations,
    "mitigation-id": _mitigation_ids,
    "detection": _detections,
    "procedure": _procedures,
    "weakness": _weaknesses,  # cwe-consequence, cwe-mitigation, cwe-description, cwe-capec
    "capec": _capecs,
}


def generate_mcq(kb=None, seed: int = 0, templates: list[str] | None = None) -> list[dict]:
    """All MCQ items the knowledge supports, sorted by id; identical for the same knowledge and seed."""
    if kb is None:
        from cyberslm.knowledge import load_knowledge

        kb = load_knowledge()
    ctx = _Ctx(kb)

    def rng_for(template: str, key: str) -> random.Random:
        return random.Random(f"{seed}:{template}:{key}")

    items: dict[str, dict] = {}
    for name in templates or list(TEMPLATES):
        for item in TEMPLATES[name](ctx, rng_for):
            if item is not None:
                items.setdefault(item["id"], item)
    return [items[k] for k in sorted(items)]


# -- splitting -------------------------------------------------------------------------------------
def split_key(entry_id: str) -> str:
    """What an id hashes as: sub-techniques with their parent, everything else as itself."""
    entry_id = entry_id.upper()
    return entry_id.split(".")[0] if re.fullmatch(r"T\d{4}\.\d{3}", entry_id) else entry_id


def is_dev_entry(entry_id: str, dev_fraction: float = 0.2, salt: str = "cyberslm-mcq-dev") -> bool:
    digest = hashlib.sha256(f"{salt}:{split_key(entry_id)}".encode()).hexdigest()
    return int(digest[:8], 16) / 0x1_0000_0000 < dev_fraction


def split_mcq(items: list[dict], dev_fraction: float = 0.2, salt: str = "cyberslm-mcq-dev"):
    """(train, dev): dev items have a dev subject; train items contain no dev entry at all."""
    dev = [it for it in items if is_dev_entry(it["subject"], dev_fraction, salt)]
    train = [it for it in items if not any(is_dev_entry(i, dev_fraction, salt) for i in it["source_ids"])]
    return train, dev


def sample_items(items: list[dict], n: int, seed: int = 0) -> list[dict]:
    """n items spread evenly over templates (round-robin), deterministic."""
    rng = random.Random(seed)
    by_template: dict[str, list[dict]] = {}
    for it in items:
        by_template.setdefault(it["template"], []).append(it)
    for group in by_template.values():
        rng.shuffle(group)
    out, queues = [], [by_template[t] for t in sorted(by_template)]
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


def write_tsv(items: list[dict], path: str | Path) -> Path:
    """Items as a CTI-Bench MCQ TSV (URL, Question, Option A-D, Prompt, GT)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["URL", "Question", "Option A", "Option B", "Option C", "Option D", "Prompt", "GT"])
        for it in items:
            o = it["options"]
            row = [it["url"], it["question"], o["A"], o["B"], o["C"], o["D"], it["prompt"], it["answer"]]
            writer.writerow([str(v).replace("\t", " ").replace("\n", " ") for v in row])
    return path
