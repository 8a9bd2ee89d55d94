"""Any OpenAI-compatible chat endpoint: `openai:http://127.0.0.1:8000/v1#model-name`.

Requests run concurrently in a thread pool; the SDK retries with exponential backoff and honours
the timeout. The API key comes from OPENAI_API_KEY or CYBERSLM_API_KEY (local servers need none).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import Backend, Conversation, GenerationConfig


def parse_target(target: str) -> tuple[str, str]:
    """Split `http://host/v1#model` into (base_url, model); the model defaults to "default"."""
    base_url, _, model = target.partition("#")
    if not base_url.startswith(("http://", "https://")):
        raise CyberslmError(f"openai:{target}: expected openai:http(s)://host:port/v1#model-name")
    return base_url.rstrip("/"), model or "default"


class OpenAIBackend(Backend):
    """Chat completions against an OpenAI-compatible server, many requests in flight at once."""

    def __init__(self, target: str, concurrency: int = 8, timeout: float = 120.0, max_retries: int = 4):
        import openai

        self.base_url, self.model = parse_target(target)
        self.name = f"openai:{target}"
        api_key = os.environ.get("OPENAI_API_KEY") or os.environ.get("CYBERSLM_API_KEY") or "none"
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
        )
        self._openai = openai
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai-backend")

    def _params(self, conversation: Conversation, config: GenerationConfig) -> dict:
        params = {
            "model": self.model,
            "messages": conversation,
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
        }
        if config.seed is not None:
            params["seed"] = config.seed
        if config.stop:
            params["stop"] = config.stop
        return params

    def _one(self, conversation: Conversation, config: GenerationConfig) -> str:
        try:
            reply = self.client.chat.completions.create(**self._params(conversation, config))
        except self._openai.OpenAIError as exc:
            raise CyberslmError(f"{self.name}: request failed: {exc}") from exc
        return (reply.choices[0].message.content or "").strip()

    def generate(self, conversations: list[Conversation], config: GenerationConfig) -> list[str]:
        return list(self._pool.map(lambda c: self._one(c, config), conversations))

    def stream(self, conversation: Conversation, config: GenerationConfig) -> Iterator[str]:
        try:
            chunks = self.client.chat.completions.create(**self._params(conversation, config), stream=True)
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except self._openai.OpenAIError as exc:
            raise CyberslmError(f"{self.name}: request failed: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
