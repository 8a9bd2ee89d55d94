"""Evaluation throughput: items/s through the real eval runner (collect + score).

1. CTI-MCQ with the SmolLM2 GGUF on CPU (hf backend), batched (--batch-size) vs one at a time.
2. CTI-RCM with the classifier backend over 1,000 items (target: under 10 s).

Items are the project's own format fixtures (tests/eval/fixtures), cycled to the wanted count with a
numbered suffix so no two prompts are identical; pass --data-dir to use the official TSVs instead.

    python bench/eval_speed.py --threads 2 --mcq-items 16 --rcm-items 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from cyberslm.eval.protocol import get_protocol
from cyberslm.eval.runner import RunConfig, collect, score, scoring_context
from cyberslm.eval.tasks import TASKS, Item
from cyberslm.models.backend import GenerationConfig

FIXTURES = Path(__file__).parent.parent / "tests" / "eval" / "fixtures"


def cycled(task_name: str, data_dir: Path, n: int) -> list[Item]:
    base = TASKS[task_name].load(data_dir)
    return [
        Item(index=i, prompt=f"{base[i % len(base)].prompt} (item {i})", gt=base[i % len(base)].gt, fields={})
        for i in range(n)
    ]


def timed_run(backend, task_name: str, items: list[Item], batch_size: int, max_new_tokens: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        config = RunConfig(model=backend.name, tasks=[TASKS[task_name]], protocol=get_protocol("foundation-sec"),
                           data_dir=Path(out), output_dir=Path(out), trials=1, batch_size=batch_size,
                           max_new_tokens=max_new_tokens, progress=False)
        start = time.perf_counter()
        collect(backend, config, {task_name: items})
        results = score(config, {task_name: items}, scoring_context(tasks=config.tasks))
        seconds = time.perf_counter() - start
    metric = results[task_name]["metrics"]["accuracy"]["mean"]
    return {"task": task_name, "items": len(items), "batch_size": batch_size, "seconds": round(seconds, 2),
            "items_per_s": round(len(items) / seconds, 2), "accuracy": round(metric, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=FIXTURES)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--mcq-items", type=int, default=16)
    parser.add_argument("--mcq-batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--rcm-items", type=int, default=1000)
    parser.add_argument("--classifier", default="default", help="classifier artifact: default or a folder")
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()
    rows = []
    if not args.skip_hf:
        import torch

        from cyberslm.models.backend import load_backend

        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        hf = load_backend("hf:smollm2", device="cpu")
        print(f"hf:smollm2 loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        mcq = cycled("cti-mcq", args.data_dir, args.mcq_items)
        hf.generate([[{"role": "user", "content": "warm up"}]], GenerationConfig(max_new_tokens=2))
        for batch in (1, args.mcq_batch):
            rows.append(dict(timed_run(hf, "cti-mcq", mcq, batch, args.max_new_tokens), backend="hf:smollm2"))
            print(rows[-1], flush=True)
    try:
        from cyberslm.models.backend import load_backend

        clf = load_backend(f"classifier:{args.classifier}")
    except Exception as exc:  # the classifier artifact may not be built yet
        print(f"classifier backend unavailable: {exc}")
    else:
        rcm = cycled("cti-rcm", args.data_dir, args.rcm_items)
        rows.append(dict(timed_run(clf, "cti-rcm", rcm, 256, 64), backend=clf.name))
        print(rows[-1], flush=True)
    print(json.dumps({"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                      "threads": args.threads, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
