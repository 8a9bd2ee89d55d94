"""In-process vLLM engine (GPU only): `vllm:./merged` or `vllm:/path/to/model`.

vLLM is imported lazily, so the rest of cyberslm works without it. Sampling is seeded per
request through SamplingParams(seed=...), so trials are reproducible.
"""

from __future__ import annotations

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import Backend, Conversation, GenerationConfig


class VLLMBackend(Backend):
    """Batched chat generation with vllm.LLM.chat."""

    def __init__(self, target: str, dtype: str = "bfloat16", max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.9, max_lora_rank: int = 64):
        try:
            import vllm
        except ImportError as exc:
            raise CyberslmError(
                "vllm: backend needs the 'vllm' package and a CUDA GPU (pip install 'cyberslm[gpu]')"
            ) from exc
        self._vllm = vllm
        self.name = f"vllm:{target}"
        kwargs = {"model": target, "dtype": dtype, "trust_remote_code": False,
                  "gpu_memory_utilization": gpu_memory_utilization, "max_lora_rank": max_lora_rank}
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kwargs)

    def generate(self, conversations: list[Conversation], config: GenerationConfig) -> list[str]:
        params = self._vllm.SamplingParams(
            max_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
            stop=config.stop or None,
        )
        outputs = self.llm.chat(conversations, params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]

    def close(self) -> None:
        del self.llm
