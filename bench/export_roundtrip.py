"""Merge + GGUF export on a real model: the bundled SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized by transformers).

Builds an r=64 / alpha=64 LoRA adapter on all linear layers (random, small B so the model stays sensible),
merges it (`cyberslm.train.merge.merge`), exports f32 / f16 / q8_0 (`cyberslm.train.gguf_writer.convert`),
loads every GGUF back with transformers and compares logits and a greedy continuation against the
unmerged adapter model. Prints a JSON summary and writes OUT/results.json and OUT/export.png.

    python bench/export_roundtrip.py --out runs/bench-export
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

PROMPT = [{"role": "user", "content": "Which CWE fits: SQL injection in the login form of a web shop?"}]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("runs/bench-export"))
    parser.add_argument("--outtypes", default="f32,f16,q8_0,q4_0")
    args = parser.parse_args()
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cyberslm.models.hf import smollm2_gguf_path
    from cyberslm.train.gguf_writer import convert
    from cyberslm.train.merge import merge

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    gguf_path = smollm2_gguf_path()
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    config = LoraConfig(r=64, lora_alpha=64, init_lora_weights=False, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(base, config)
    with torch.no_grad():  # random but small updates: a non-trivial delta that keeps the model coherent
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.02)
    adapter = out / "adapter"
    peft_model.save_pretrained(str(adapter))
    tok.save_pretrained(str(adapter))

    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_dict=False)
    ids = torch.tensor([ids if isinstance(ids, list) else ids["input_ids"]])

    def run(model):
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
            gen = model.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=tok.eos_token_id)
        return logits, gen[0, ids.shape[1]:].tolist()

    adapter_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32),
        str(adapter))
    ref_logits, ref_gen = run(adapter_model)
    results = {"model": gguf_path.name, "lora": "r=64 alpha=64 all linear", "prompt_tokens": ids.shape[1],
               "reference_continuation": tok.decode(ref_gen)}

    t0 = time.perf_counter()
    merged_dir = merge(adapter, out / "merged", dtype="fp32")
    results["merge_s"] = round(time.perf_counter() - t0, 1)
    merged_logits, merged_gen = run(AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32))
    results["merged"] = _compare(ref_logits, merged_logits, ref_gen, merged_gen)

    for outtype in args.outtypes.split(","):
        target = out / f"smollm2-merged-{outtype}.gguf"
        t0 = time.perf_counter()
        summary = convert(merged_dir, target, outtype, progress=False)
        seconds = round(time.perf_counter() - t0, 1)
        loaded = AutoModelForCausalLM.from_pretrained(str(out), gguf_file=target.name, dtype=torch.float32)
        logits, gen = run(loaded)
        results[outtype] = {"export_s": seconds, "mib": round(summary["bytes"] / 2**20, 1),
                            **_compare(ref_logits, logits, ref_gen, gen)}
        print(outtype, results[outtype], flush=True)

    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    _plot(results, args.outtypes.split(","), out / "export.png")
    print(json.dumps(results, indent=2))


def _compare(ref: torch.Tensor, got: torch.Tensor, ref_gen: list[int], gen: list[int]) -> dict:
    return {"rel_logit_err": float((got - ref).norm() / ref.norm()), "max_abs_logit_err": float((got - ref).abs().max()),
            "top1_agree": float((got.argmax(-1) == ref.argmax(-1)).float().mean()),
            "greedy_24_identical": gen == ref_gen}


def _plot(results: dict, outtypes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    left.bar(outtypes, [results[t]["mib"] for t in outtypes])
    left.set_ylabel("file size (MiB)")
    right.bar(outtypes, [max(results[t]["rel_logit_err"], 1e-8) for t in outtypes])
    right.set_yscale("log")
    right.set_ylabel("relative logit error vs adapter")
    fig.suptitle("SmolLM2-135M + LoRA r=64: merged GGUF export")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
