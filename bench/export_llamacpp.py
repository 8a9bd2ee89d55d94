"""Load GGUF files written by `cyberslm export gguf` in the real llama.cpp and compare with transformers.

llama-cpp-python is not a cyberslm dependency; install it somewhere aside first, e.g.
    pip install --no-deps --target /tmp/llama-site llama-cpp-python diskcache
    PYTHONPATH=/tmp/llama-site python bench/export_llamacpp.py runs/bench-export/merged runs/bench-export/*.gguf
MERGED is the Hugging Face folder the files were exported from (run bench/export_roundtrip.py first).
Prints, per file: do llama.cpp's tokens equal the HF tokenizer's (plain text and the chat-templated prompt),
and the relative logit error / top-1 agreement of llama.cpp against transformers on the chat prompt.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from llama_cpp import Llama
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = "CVE-2024-12345: SQL injection in the login form (port 8080) lets attackers read 10 tables."


def main(merged: str, ggufs: list[str]) -> None:
    tok = AutoTokenizer.from_pretrained(merged)
    messages = [{"role": "user", "content": "Which CWE fits: " + TEXT}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    with torch.no_grad():
        ref = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)(input_ids=torch.tensor([ids]))
    ref = ref.logits[0].numpy()
    for path in ggufs:
        llm = Llama(model_path=path, logits_all=True, n_ctx=256, verbose=False, n_threads=2)
        plain_same = llm.tokenize(TEXT.encode(), add_bos=False) == tok.encode(TEXT, add_special_tokens=False)
        chat_same = llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        got = np.array(llm.scores[: len(ids)])
        rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        top1 = float((got.argmax(-1) == ref.argmax(-1)).mean())
        print(f"{path}: tokens_same={plain_same} chat_tokens_same={chat_same} rel_logit_err={rel:.2e} top1={top1:.3f}",
              flush=True)
        llm.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
