"""Evaluation protocols: how prompts are sent and how unparseable answers are counted.

foundation-sec (default): no system prompt, temperature 0.3, 5 seeded trials, every item in the
  denominator; strict = expected format on the final line, lenient = answer found anywhere.
ctibench: the CTI-Bench paper's system prompt, temperature 0, unparseable answers left out of the
  denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import Conversation

CTIBENCH_SYSTEM = "You are a cybersecurity expert specializing in cyberthreat intelligence."


@dataclass(frozen=True)
class Protocol:
    name: str
    system_prompt: str | None
    temperature: float
    trials: int
    unparseable_in_denominator: bool
    description: str

    def messages(self, prompt: str) -> Conversation:
        """The conversation for one benchmark prompt, sent verbatim as the user message."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": prompt}]


PROTOCOLS = {
    "foundation-sec": Protocol(
        "foundation-sec", None, 0.3, 5, True,
        "no system prompt; temperature 0.3; mean and std over seeded trials; every item in the denominator; "
        "strict = expected format on the final line, lenient = answer found anywhere",
    ),
    "ctibench": Protocol(
        "ctibench", CTIBENCH_SYSTEM, 0.0, 1, False,
        f"system prompt {CTIBENCH_SYSTEM!r}; temperature 0; unparseable answers left out of the denominator",
    ),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise CyberslmError(f"--protocol: unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
