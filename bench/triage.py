"""Benchmark of the CPU CWE classifier and `cyberslm triage` (figures in docs/bench/triage.md).

    python bench/triage.py [--feeds /work/shared/data/nvd] [--test-year 2022]
    python bench/triage.py --validate 2021   # recipe choice: train on earlier years, test on 2021

Held-out accuracy on the temporal NVD split (train 2002 + 2017-2021, test 2022, decontaminated) of the
shipped default classifier next to a plain TF-IDF + LogisticRegression baseline on the same rows;
throughput on 10,000 descriptions; CLI cold start to the first result; a reliability plot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cyberslm.models.cwe_classifier import CweClassifier
from cyberslm.train.classifier import evaluate, fit, load_rows, split

ROOT = Path(__file__).resolve().parents[1]


def baseline(train: list[dict], test: list[dict], labels: list[str]) -> dict:
    """Plain TfidfVectorizer() + LogisticRegression() (library defaults) on the classifier's label set."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    keep = set(labels)
    rows = [r for r in train if r["cwe"] in keep]
    vec = TfidfVectorizer()
    model = LogisticRegression(max_iter=1000).fit(
        vec.fit_transform([r["description"] for r in rows]), [r["cwe"] for r in rows]
    )
    proba = model.predict_proba(vec.transform([r["description"] for r in test]))
    top = (-proba).argsort(axis=1)[:, :3]
    topk = [[(model.classes_[j], float(p[j])) for j in row] for row, p in zip(top, proba, strict=True)]
    return evaluate(topk, test, labels)


def validate(rows: list[dict], year: int) -> None:
    """The validation split used to choose the recipe: rows up to `year`, test = `year` (never 2022)."""
    train, test, stats = split([r for r in rows if r["year"] is not None and r["year"] <= year], year)
    print(f"validation split: {json.dumps(stats)}")
    for name, modernise in (("modernised labels (shipped)", True), ("old labels", False)):
        clf, info = fit(train, modernise_labels=modernise)
        m = evaluate(clf.predict_topk([r["description"] for r in test], k=3), test, clf.labels)
        print(f"validation {year}, {name}, {info['labels']} labels: {json.dumps(m)}", flush=True)


def throughput(clf: CweClassifier, texts: list[str], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict_topk(texts, k=3)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def cold_start(repeats: int = 5) -> list[float]:
    exe = Path(sys.executable).with_name("cyberslm")
    cmd = [str(exe), "triage", "SQL injection in login.php via the id parameter", "--format", "jsonl"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        assert "CWE-89" in done.stdout, done.stdout
    return times


def reliability_plot(topk, rows, path: Path, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    conf = np.array([p[0][1] for p in topk])
    hit = np.array([p[0][0] in r["cwes"] for p, r in zip(topk, rows, strict=True)], float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    mids = [(edges[b] + edges[b + 1]) / 2 for b in range(bins) if (which == b).any()]
    acc = [hit[which == b].mean() for b in range(bins) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(mids, acc, width=1 / bins, alpha=0.7, edgecolor="black", label="top-1 accuracy")
    ax.set(xlabel="top-1 probability", ylabel="accuracy (strict)", title="CWE classifier, NVD 2022 held out")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=Path, default=Path("/work/shared/data/nvd"))
    parser.add_argument("--test-year", type=int, default=2022)
    parser.add_argument("--model", default="default")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/bench/triage-reliability.png")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--validate", type=int, metavar="YEAR", help="Only run the validation split.")
    args = parser.parse_args()

    rows = load_rows(sorted(args.feeds.glob("*.json*")) if args.feeds.is_dir() else [args.feeds])
    if args.validate:
        return validate(rows, args.validate)
    train, test, stats = split(rows, args.test_year)
    print(f"split: {json.dumps(stats)}")
    clf = CweClassifier.load(args.model)
    topk = clf.predict_topk([r["description"] for r in test], k=3)
    ours = evaluate(topk, test, clf.labels)
    print(f"classifier ({args.model}, {len(clf.labels)} labels): {json.dumps(ours)}")
    if not args.skip_baseline:
        start = time.time()
        base = baseline(train, test, clf.labels)
        print(
            f"baseline TF-IDF + LogisticRegression: {json.dumps(base)} (trained in {time.time() - start:.0f} s)"
        )
    texts = [r["description"] for r in (test * 2)[:10_000]]
    print(
        f"throughput: {throughput(clf, texts):,.0f} CVEs/s on {len(texts):,} descriptions "
        f"({os.cpu_count()} CPU cores visible)"
    )
    times = cold_start()
    print(
        f"cold start `cyberslm triage TEXT` to first result: median {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s, max {max(times):.2f} s over {len(times)} runs"
    )
    reliability_plot(topk, test, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
