"""Benchmark `cyberslm ask` on a dev set of MCQs generated from the knowledge (dev split only).

    python bench/ask.py                       # retrieval answerer on 400 dev items, SmolLM2 on the first 100
    python bench/ask.py --n 400 --llm-n 100 --dense --out runs/bench-ask

Methods: the default answerer (lexical; +dense with --dense), SmolLM2-135M closed-book (the CTI-Bench
prompt alone) and SmolLM2-135M grounded (the same prompt through grounded_messages, k passages).
SmolLM2 runs greedy, no system prompt, every item in the denominator; strict = letter alone on the
final line, lenient = last letter anywhere. Rows are appended to <out>/<method>.jsonl as they finish,
so a killed run resumes. Nothing here was tuned on these dev items.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cyberslm.io import JsonlAppender

METHODS = ["retrieval-lexical", "retrieval-hybrid", "smollm2-closed", "smollm2-grounded"]


def sample_split(n: int, seed: int, split: str = "dev") -> list[dict]:
    """n items of one split; develop on `--split train`, report on dev."""
    from cyberslm.data.mcq import generate_mcq, sample_items, split_mcq

    train, dev = split_mcq(generate_mcq(seed=seed))
    return sample_items(dev if split == "dev" else train, n, seed=seed)


def run_retrieval(items, out: Path, dense: bool, name: str) -> None:
    from cyberslm.ask import answer
    from cyberslm.ask.retrieval import load_index

    index = load_index(dense=dense)
    with JsonlAppender(out / f"{name}.jsonl") as log:
        done = log.done_keys("id")
        for it in items:
            if it["id"] in done:
                continue
            start = time.perf_counter()
            a = answer(it["question"], it["options"], index=index)
            ms = 1000 * (time.perf_counter() - start)
            log.write({"id": it["id"], "template": it["template"], "gt": it["answer"], "pred": a.letter,
                       "lenient": a.letter, "confidence": a.confidence, "ms": ms})


def run_llm(items, out: Path, grounded: bool, k: int, batch: int = 1) -> None:
    from cyberslm.ask.grounding import grounded_messages
    from cyberslm.ask.retrieval import load_index
    from cyberslm.eval.parsing import extract_letter
    from cyberslm.models.backend import GenerationConfig, load_backend

    backend = load_backend("hf:smollm2", batch_size=batch)
    index = load_index(dense=False) if grounded else None  # lexical evidence: same figures with or without a dense cache
    config = GenerationConfig(max_new_tokens=48, temperature=0.0)
    name = "smollm2-grounded" if grounded else "smollm2-closed"
    with JsonlAppender(out / f"{name}.jsonl") as log:
        done = log.done_keys("id")
        todo = [it for it in items if it["id"] not in done]
        for s in range(0, len(todo), batch):
            chunk = todo[s:s + batch]
            start = time.perf_counter()
            chats = [[{"role": "user", "content": it["prompt"]}] for it in chunk]
            if grounded:
                chats = [grounded_messages(c, k=k, index=index) for c in chats]
            texts = backend.generate(chats, config)
            ms = 1000 * (time.perf_counter() - start) / len(chunk)
            for it, text in zip(chunk, texts, strict=True):
                log.write({"id": it["id"], "template": it["template"], "gt": it["answer"],
                           "pred": extract_letter(text), "lenient": extract_letter(text, strict=False),
                           "ms": ms, "output": text[-300:]})


def index_timing() -> dict:
    """Seconds to build the lexical index from the knowledge and to load it back from the cache."""
    from cyberslm.ask import retrieval
    from cyberslm.knowledge import load_knowledge

    kb = load_knowledge()
    start = time.perf_counter()
    passages = retrieval.build_passages(kb)
    bm25, _ = retrieval._bm25_matrix(passages)
    built = time.perf_counter() - start
    folder = retrieval.load_index(kb, dense=False).path  # makes sure the cache exists
    start = time.perf_counter()
    retrieval._load(folder)
    loaded = time.perf_counter() - start
    return {"passages": len(passages), "terms": bm25.shape[1], "build_s": round(built, 2),
            "load_s": round(loaded, 2), "kb_version": kb.version()}


def summarize(out: Path, names: list[str]) -> dict:
    summary = {}
    for name in names:
        rows = JsonlAppender(out / f"{name}.jsonl").read()
        if not rows:
            continue
        n = len(rows)
        per_template: dict[str, list[int]] = {}
        for r in rows:
            per_template.setdefault(r["template"], []).append(int(r["pred"] == r["gt"]))
        summary[name] = {
            "n": n,
            "accuracy": sum(r["pred"] == r["gt"] for r in rows) / n,
            "lenient": sum(r["lenient"] == r["gt"] for r in rows) / n,
            "ms_per_question": sum(r["ms"] for r in rows) / n,
            "by_template": {t: sum(v) / len(v) for t, v in sorted(per_template.items())},
        }
    grounded = {r["id"] for r in JsonlAppender(out / "smollm2-grounded.jsonl").read()}
    closed = [r for r in JsonlAppender(out / "smollm2-closed.jsonl").read() if r["id"] in grounded]
    if closed:  # closed-book on exactly the grounded items, for a paired comparison
        summary["smollm2-closed (grounded items)"] = {
            "n": len(closed),
            "accuracy": sum(r["pred"] == r["gt"] for r in closed) / len(closed),
            "lenient": sum(r["lenient"] == r["gt"] for r in closed) / len(closed),
            "ms_per_question": sum(r["ms"] for r in closed) / len(closed),
        }
    return summary


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in summary if "accuracy" in summary[n]]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels = [n.replace(" (", "\n(").replace("-", "\n", 1) for n in names]
    ax.bar(labels, [summary[n]["accuracy"] for n in names], color="#4477aa")
    ax.axhline(0.25, color="gray", linestyle="--", label="chance")
    for i, n in enumerate(names):
        ax.text(i, summary[n]["accuracy"] + 0.02, f"{summary[n]['accuracy']:.2f} (n={summary[n]['n']})", ha="center")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (strict)")
    ax.set_title("cyberslm ask on generated CTI MCQ dev items")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="dev items for the retrieval answerer")
    ap.add_argument("--llm-n", type=int, default=100, help="first N of those for SmolLM2 closed-book (0 skips)")
    ap.add_argument("--grounded-n", type=int, default=40,
                    help="first N for SmolLM2 grounded (long prompts: ~20-70 s each on a shared 2-core CPU)")
    ap.add_argument("--k", type=int, default=3, help="passages in the grounded prompt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=["dev", "train"], default="dev",
                    help="dev for reported figures; train for development checks")
    ap.add_argument("--dense", action="store_true", help="also run retrieval with MiniLM (builds embeddings)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-ask"))
    ap.add_argument("--plot", type=Path, default=Path("docs/bench/ask-accuracy.png"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    items = sample_split(args.n, args.seed, args.split)
    from cyberslm.data.mcq import write_tsv

    write_tsv(items, args.out / f"{args.split}-mcq.tsv")  # the exact items, for `cyberslm ask --file` or eval
    run_retrieval(items, args.out, dense=False, name="retrieval-lexical")
    if args.dense:
        start = time.perf_counter()
        from cyberslm.ask.retrieval import load_index

        load_index(dense=True)
        print(f"dense index ready in {time.perf_counter() - start:.0f} s")
        run_retrieval(items, args.out, dense=True, name="retrieval-hybrid")
    if args.llm_n:
        run_llm(items[: args.llm_n], args.out, grounded=False, k=args.k)
    if args.grounded_n:
        run_llm(items[: args.grounded_n], args.out, grounded=True, k=args.k)
    summary = summarize(args.out, METHODS)  # every method run so far in this folder
    summary["index"] = index_timing()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(summary, args.plot)


if __name__ == "__main__":
    main()
