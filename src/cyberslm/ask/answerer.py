"""Answer a CTI question from the knowledge: an evidence scorer by default, or a language model grounded on it.

Default answerer (no model): each option is scored by how well a single passage supports both the
question and the option: max over passages of sim(question, p) * sim(option, p), with BM25 (and
MiniLM cosine when dense embeddings are cached). Words the option shares with the question are left
out of the option's query, so restating the question earns nothing. The correct answer to "which
mitigation involves preventing unsigned applications" is the mitigation whose own passage or
"mitigates" relationship says so; distractors rarely co-occur with the question's content.

With a model, the same evidence goes into the prompt and the model must cite it ([T1059.001]).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from cyberslm.ask.retrieval import Index, Passage, find_ids, load_index

LETTERS = "ABCD"
CONFIDENCE_TEMPERATURE = 8.0  # softmax sharpness over option scores in [0, 1]; fixed, not tuned
DENSE_WEIGHT = 0.5
KIND_WORDS = {  # question words -> entry kinds, a small prior when options name knowledge entries
    "technique": "technique", "sub-technique": "technique", "tactic": "tactic", "mitigation": "mitigation",
    "group": "group", "threat actor": "group", "adversary": "group", "software": "software",
    "malware": "software", "tool": "software", "campaign": "campaign", "data source": "data-source",
    "data component": "data-component", "detection": "detection", "weakness": "cwe", "cwe": "cwe",
    "attack pattern": "capec", "capec": "capec",
}
KIND_PRIOR = 0.05
PROMPT_PASSAGE_CHARS = 500  # per passage in prompts: small models on CPU pay for every prompt token

SYSTEM_PROMPT = (
    "You are a cyber threat intelligence analyst. Answer using the reference passages from MITRE "
    "ATT&CK, CWE and CAPEC. Cite every passage you rely on by its id in square brackets, e.g. [T1059.001]."
)


@dataclass
class Source:
    id: str
    name: str
    kind: str
    url: str
    text: str
    score: float

    @classmethod
    def of(cls, p: Passage, score: float) -> Source:
        return cls(p.id, p.name, p.kind, p.url, p.text, round(float(score), 4))


@dataclass
class Answer:
    question: str
    answer: str
    letter: str | None = None
    confidence: float | None = None  # null when a language model answered
    model: str = "retrieval"
    sources: list[Source] = field(default_factory=list)
    options: dict[str, str] | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question, "answer": self.answer, "letter": self.letter,
            "confidence": self.confidence, "model": self.model,
            "sources": [vars(s) for s in self.sources],
        }


def _unit(scores: np.ndarray) -> np.ndarray:
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


def _similarities(index: Index, text: str, drop: set[str] | None = None, ids: list[str] | None = None):
    """sim(text, passage) in [0, 1] for all passages: unit BM25, averaged with dense cosine if present."""
    sim = _unit(index.lexical_scores(text, drop=drop))
    if ids:  # a named id (M1028, CWE-79) means its passages are the evidence
        sim = np.maximum(sim, index.id_mask(ids))
    dense = index.dense_scores(text)
    if dense is not None:
        sim = (sim + DENSE_WEIGHT * np.clip(dense, 0, None)) / (1 + DENSE_WEIGHT)
    return sim


def _kind_prior(index: Index, question: str, option: str) -> float:
    q = question.lower()
    wanted = {kind for word, kind in KIND_WORDS.items() if re.search(rf"\b{re.escape(word)}", q)}
    if not wanted:
        return 0.0
    return KIND_PRIOR if index.kinds_by_name.get(option.strip().lower(), set()) & wanted else 0.0


def score_options(index: Index, question: str, options: dict[str, str], k: int = 5):
    """Score each option against the evidence; returns (scores by letter, evidence by letter)."""
    q_sim = _similarities(index, question, ids=find_ids(question))
    q_terms = set(index.terms(question))
    scores, evidence = {}, {}
    for letter, option in options.items():
        o_sim = _similarities(index, option, drop=q_terms, ids=find_ids(option))
        joint = q_sim * o_sim
        top = np.argsort(-joint, kind="stable")[:k]
        scores[letter] = float(joint[top[0]]) + _kind_prior(index, question, option)
        evidence[letter] = [(index.passages[i], float(joint[i])) for i in top if joint[i] > 0]
    return scores, evidence


def evidence_for(index: Index, question: str, options: dict[str, str] | None, k: int = 5):
    """The passages a reader (or a model) needs: best per option for MCQs, else the search hits."""
    if not options:
        return index.search(question, k=k)
    _, evidence = score_options(index, question, options, k=k)
    picked: dict[str, tuple[Passage, float]] = {}
    for rank in range(k):  # round-robin so every option's best evidence makes the cut
        for letter in options:
            if rank < len(evidence[letter]):
                p, s = evidence[letter][rank]
                key = p.text
                if key not in picked or picked[key][1] < s:
                    picked[key] = (p, s)
        if len(picked) >= k:
            break
    return sorted(picked.values(), key=lambda ps: -ps[1])[:k]


def format_options(options: dict[str, str]) -> str:
    return "\n".join(f"{letter}) {text}" for letter, text in options.items())


def passages_block(hits: list[tuple[Passage, float]], max_chars: int = PROMPT_PASSAGE_CHARS) -> str:
    """Reference passages as the prompt quotes them: one `[ID] name (kind): text` per line."""
    lines = []
    for p, _ in hits:
        text = p.text if len(p.text) <= max_chars else p.text[:max_chars].rsplit(" ", 1)[0] + " ..."
        lines.append(f"[{p.id}] {p.name} ({p.kind}): {text}")
    return "Reference passages:\n" + "\n".join(lines)


def _retrieval_answer(index: Index, question: str, options: dict[str, str] | None, k: int) -> Answer:
    if not options:
        hits = index.search(question, k=k)
        if not hits:
            return Answer(question, "No passage in the knowledge matches this question.", None, 0.0)
        best, score = hits[0]
        first = re.split(r"(?<=[.!?])\s", best.text, maxsplit=1)[0]
        confidence = 1.0 if score >= 1.0 else round(score / sum(s for _, s in hits), 4)
        return Answer(question, f"{first} ({best.url})" if best.url else first, None, confidence,
                      sources=[Source.of(p, s) for p, s in hits])
    scores, evidence = score_options(index, question, options, k=k)
    letters = list(options)
    values = np.array([scores[x] for x in letters])
    probs = np.exp(CONFIDENCE_TEMPERATURE * (values - values.max()))
    probs /= probs.sum()
    best = letters[int(np.argmax(values))]
    return Answer(question, f"{best}) {options[best]}", best, round(float(probs.max()), 4),
                  sources=[Source.of(p, s) for p, s in evidence[best]], options=options)


_BACKENDS: dict = {}


def _model_answer(index: Index, question: str, options: dict[str, str] | None, model: str, k: int,
                  max_new_tokens: int | None = None) -> Answer:
    from cyberslm.eval.parsing import extract_letter
    from cyberslm.models.backend import GenerationConfig, load_backend

    if model not in _BACKENDS:
        _BACKENDS[model] = load_backend(model)
    hits = evidence_for(index, question, options, k=k)
    if options:
        task = (f"Question: {question}\nOptions:\n{format_options(options)}\n\nExplain briefly with "
                "citations, then give the last line as only the letter of the best option (A, B, C or D).")
    else:
        task = f"Question: {question}\nAnswer in a few sentences with citations."
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"{passages_block(hits)}\n\n{task}"}]
    config = GenerationConfig(max_new_tokens=max_new_tokens or (128 if options else 256))
    text = _BACKENDS[model].generate([messages], config)[0].strip()
    letter = extract_letter(text, strict=False) if options else None
    if letter is not None and options and letter not in options:
        letter = None
    return Answer(question, text, letter, None, model, [Source.of(p, s) for p, s in hits], options)


def answer(question: str, options: dict[str, str] | None = None, model: str | None = None, k: int = 5,
           index: Index | None = None, max_new_tokens: int | None = None) -> Answer:
    """Answer a CTI question from the knowledge; MCQ when `options` (letters A-D) are given.

    model=None uses the evidence scorer (no language model); otherwise any load_backend spec, whose
    prompt carries the retrieved passages (max_new_tokens bounds its answer).
    """
    if options is not None:
        from cyberslm.ask.questions import check_options

        options = check_options(options, "options")
    index = index or load_index()
    if model:
        return _model_answer(index, question, options, model, k, max_new_tokens)
    return _retrieval_answer(index, question, options, k)
