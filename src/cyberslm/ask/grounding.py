"""Ground an already-built chat in retrieved knowledge (used by `cyberslm eval --grounded`).

The last user message is read as a question; for a CTI-Bench MCQ prompt the evidence is the best
passages per option, otherwise plain search hits. The passages are put in front of that message, with
a request to cite them, and the rest of the chat is left as it was.
"""

from __future__ import annotations

from cyberslm.ask.answerer import evidence_for, passages_block
from cyberslm.ask.questions import parse_question
from cyberslm.ask.retrieval import Index, load_index
from cyberslm.errors import CyberslmError

CITE = "Use these passages where they help and cite them by id in square brackets, e.g. [T1059.001]."


def grounded_messages(messages: list[dict[str, str]], k: int = 5, index: Index | None = None) -> list[dict[str, str]]:
    """A copy of `messages` whose last user message starts with k retrieved passages."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        raise CyberslmError("grounded_messages: the chat has no user message to ground")
    index = index or load_index()
    content = messages[last]["content"]
    try:
        q = parse_question(content)
        hits = evidence_for(index, q.text, q.options, k=k)
    except CyberslmError:  # not MCQ-shaped: search with the whole message
        hits = index.search(content, k=k)
    out = [dict(m) for m in messages]
    if hits:
        out[last]["content"] = f"{passages_block(hits)}\n{CITE}\n\n{content}"
    return out
