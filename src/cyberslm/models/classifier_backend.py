"""The CPU CWE classifier behind the chat interface: `classifier:default` or `classifier:./folder`.

It answers CVE-to-CWE prompts only (the CTI-RCM prompt, or any message holding "CVE Description:"):
one grounded justification line, then the CWE id alone on the last line, the format RCM scores.
Any other prompt gets an empty answer, which eval counts as unparseable.
"""

from __future__ import annotations

import re

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import Backend, Conversation, GenerationConfig

DESCRIPTION = re.compile(r"CVE Description:\s*(.+)", re.S | re.I)


def cve_description(conversation: Conversation) -> str | None:
    """The CVE description inside the last user message, or None if it is not a CVE-to-CWE prompt."""
    users = [m["content"] for m in conversation if m.get("role") == "user"]
    if not users:
        return None
    match = DESCRIPTION.search(users[-1])
    return match.group(1).strip() if match else None


def _cwe_name(cwe_id: str) -> str | None:
    try:
        from cyberslm.knowledge import load_knowledge

        weakness = load_knowledge().weakness(cwe_id)
    except (ImportError, AttributeError, CyberslmError):
        return None  # knowledge not available: the justification just omits the name
    return getattr(weakness, "name", None) if weakness else None


class ClassifierBackend(Backend):
    """CWE predictions from CweClassifier, formatted as an RCM answer."""

    def __init__(self, target: str = "default", k: int = 3):
        try:
            from cyberslm.models.cwe_classifier import CweClassifier
        except ImportError as exc:
            raise CyberslmError("classifier: cyberslm.models.cwe_classifier is not available") from exc
        self.name = f"classifier:{target or 'default'}"
        self.k = k
        self.classifier = CweClassifier.load(target or "default")
        self._names: dict[str, str | None] = {}

    def _answer(self, topk: list[tuple[str, float]]) -> str:
        if not topk:
            return ""
        best, prob = topk[0]
        if best not in self._names:
            self._names[best] = _cwe_name(best)
        name = f" ({self._names[best]})" if self._names[best] else ""
        others = ", ".join(f"{c} {p:.2f}" for c, p in topk[1:])
        runner_up = f"; alternatives: {others}" if others else ""
        return (f"The description best matches {best}{name}, classifier probability {prob:.2f}{runner_up}.\n"
                f"{best}")

    def generate(self, conversations: list[Conversation], config: GenerationConfig) -> list[str]:
        descriptions = [cve_description(c) for c in conversations]
        texts = [d for d in descriptions if d]
        predictions = iter(self.classifier.predict_topk(texts, k=self.k) if texts else [])
        return [self._answer(next(predictions)) if d else "" for d in descriptions]
