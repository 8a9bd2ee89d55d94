"""Classifier recipe variants tried for issue 2, on the validation split and the NVD 2022 test split.

    python bench/triage_variants.py [--feeds /work/shared/data/nvd] [--only base,char,...] [--years 2021,2022]

Each variant is the recipe shipped before Discouraged-label weighting (train/classifier.py: modernised labels,
categories dropped, labels with >= 10 rows, word 1-2-gram sublinear TF-IDF, LinearSVC C=0.5, newest training
year x4 and the two before x1.5) with one change, scored by top-1 strict / top-3 / macro-F1 of the SVM's
argmax (no pruning, fp16 or temperature, so `base` differs from such an artifact by a few thousandths). Year 2021 = the validation
split (train <= 2019), where a change has to win before it may ship; 2022 = the held-out test split;
2019 (train <= 2018) = a one-year-gap check, which disagrees with 2022 (docs/bench/triage.md).
One JSON line per result, appended to --out as it finishes.

Variants: base; char (+ char_wb 3-5-grams, 300k features); recency8 / recency16 (newest year weight);
mid3 (the two years before x3); c025 / c1 (SVM C); support5 (labels with >= 5 rows); catalog (relabel a row
to a descendant CWE whose short name or alternate term its description contains, e.g. CWE-772 + "memory
leak" -> CWE-401); observed (+ the CWE catalog's observed examples as extra rows); bias (refit per-label
biases and a temperature on 30% of the newest year, then add them to the full model); mlp (one hidden
layer of 256 on the TF-IDF, torch, 5 epochs); multilabel (a row with several CWEs is a training example
for each of them that is a label, weight split evenly, since a hit on any of them counts); minilm (LinearSVC
C=1 on all-MiniLM-L6-v2 sentence embeddings instead of TF-IDF); minilm_tfidf (the TF-IDF with 0.5 x the
unit-norm embedding appended); stable2 (only terms seen in >= 2 training years, against vendor and product
names that come and go); twins (a training row with n near-identical training rows, TF-IDF cosine >= 0.9,
weighs 1/n, so templated advisories do not outvote the rest); cnb (+ 0.3 x a ComplementNB's log-probabilities,
both standardised per row); discouraged (rows whose CWE the catalog's mapping guidance marks Discouraged weigh
0.25, or the factor after the name: discouraged0.1; it won on validation and is part of the shipped recipe
since, so base here is the recipe before it); copy (base + Discouraged-label rows x0.25, with the newest
year's features copied x0.5 (`newest_year_copy`) and flat weights instead of recency weights, or the factor
after the name: copy0.3; it won on validation and ships); convention (copy, after older rows take the CWE a
model of the newest year gives them where it is a parent, child or sibling of theirs with probability
>= 0.5, or the threshold after the name: convention0.7; `newest_conventions`; it won on validation and
ships); balance (convention, with each label's rows weighted towards an equal share of the total, power 0.8
or the power after the name: balance0.5, for the SVM and for the newest-year model that relabels;
`class_balance_weights`; it won on validation and lost top-1 on 2022, so it is an option, off by default);
shift (convention, with older rows weighted by how much they look like the newest training year: the odds
of a logistic regression telling the newest year's TF-IDF rows from the older ones, clipped to 0.1-10, to
the power 0.6 or the power after the name: shift0.3; covariate-shift importance weighting, Shimodaira 2000);
trigram (convention, with word 1-3-grams instead of 1-2-grams); lr (convention, with the SVM's scores and a
multinomial LogisticRegression's (C=20, same rows and weights) added, each divided by its standard deviation).
A variant run in the same process as base also reports how many test rows only one of the two gets right,
and the paired (McNemar) z of that difference.
The embeddings of every description are computed once (about 30 min on 2 cores, chunks kept so a killed run
resumes) and cached in --embeddings.
Results already in --out are skipped, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from cyberslm.io import JsonlAppender
from cyberslm.models.cwe_classifier import _VERSION
from cyberslm.train.classifier import (
    _categories,
    class_balance_weights,
    discouraged_labels,
    evaluate,
    label_weights,
    load_rows,
    modernise,
    newest_conventions,
    newest_year,
    newest_year_copy,
    recency_weights,
    split,
)

VARIANTS = ["base", "char", "recency8", "recency16", "mid3", "c025", "c1", "support5", "catalog", "observed",
            "bias", "mlp", "multilabel", "minilm", "minilm_tfidf", "stable2", "twins", "cnb",
            "discouraged", "copy", "convention", "balance", "shift", "trigram", "lr"]
# variants that start from the shipped recipe: newest-year conventions, Discouraged-label weights, feature copy
ON_CONVENTION = ("convention", "balance", "shift", "trigram", "lr")


def prep(text: str) -> str:
    return _VERSION.sub(" vernum ", text.lower())


def vectorizers(char: bool, ngrams: int = 2):
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(token_pattern=r"[a-z0-9_]{2,}", ngram_range=(1, ngrams), min_df=2, sublinear_tf=True,
                           lowercase=False, dtype=np.float32)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True, lowercase=False,
                            dtype=np.float32, max_features=300_000) if char else None
    return word, chars


def features(train_texts, test_texts, char: bool, ngrams: int = 2):
    from scipy.sparse import hstack

    word, chars = vectorizers(char, ngrams)
    x, xt = word.fit_transform(train_texts), word.transform(test_texts)
    if chars is not None:
        x = hstack([x, chars.fit_transform(train_texts)]).tocsr()
        xt = hstack([xt, chars.transform(test_texts)]).tocsr()
    return x, xt


# -- catalog-driven relabelling and observed examples ---------------------------------------------------
def _catalog():
    from cyberslm.knowledge import load_knowledge

    kb = load_knowledge()
    return kb, [e for e in kb.entries() if e.kind == "cwe"]


def catalog_relabel(rows):
    kb, weaknesses = _catalog()
    table = []
    for e in weaknesses:
        for name in re.findall(r"\('([^']+)'\)", e.name) + list(e.aliases or []):
            if len(name.strip()) >= 8:
                up = kb.cwe_ancestors(e.id, views=("1000", "1003"))
                table.append((re.compile(r"\b" + re.escape(name.strip()) + r"\b", re.I), e.id, up))
    out = []
    for r in rows:
        for rx, child, ancestors in table:
            if r["cwe"] in ancestors and rx.search(r["description"]):
                r = {**r, "cwe": child, "cwes": [child, *(c for c in r["cwes"] if c != child)]}
                break
        out.append(r)
    return out


def observed_examples(test_year: int):
    _, weaknesses = _catalog()
    rows = []
    for e in weaknesses:
        for ex in e.observed_examples or []:
            m = re.match(r"CVE-(\d{4})-", ex.get("reference", ""))
            if m and int(m.group(1)) < test_year and ex.get("description"):
                rows.append({"id": f"OBS-{ex['reference']}-{e.id}", "description": ex["description"], "cwe": e.id,
                             "cwes": [e.id], "year": int(m.group(1))})
    return rows


# -- MiniLM sentence embeddings ---------------------------------------------------------------------------
def embeddings(rows, path: Path) -> dict[str, np.ndarray]:
    """{CVE id: unit-norm all-MiniLM-L6-v2 embedding}, computed once for every row and cached in `path`."""
    if not path.exists():
        from cyberslm.ask.retrieval import encode_in_parts

        ids = sorted({r["id"] for r in rows})
        text = {r["id"]: r["description"] for r in rows}
        began = time.time()
        vectors = encode_in_parts([text[i] for i in ids], path.with_name(path.name + ".parts"), chunk=4096,
                                  dtype=np.float32, label="embedding descriptions (MiniLM)")
        # the rate is for this run only: chunks finished by a killed earlier run are loaded, not encoded
        print(json.dumps({"embedded": len(ids), "per_second": round(len(ids) / (time.time() - began), 1)}),
              flush=True)
        np.savez(path, ids=np.array(ids), x=vectors)
    cached = np.load(path)
    return dict(zip(cached["ids"].tolist(), cached["x"], strict=True))


# -- models ---------------------------------------------------------------------------------------------
def svm_scores(x, y, w, xt, c: float):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=c).fit(x, y, sample_weight=w).decision_function(xt)


def lr_scores(x, y, w, xt, c: float = 20.0):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=300).fit(x, y, sample_weight=w).decision_function(xt)


def bias_tuned_scores(fit_rows, test_texts, y_of, c: float, newest_weight: float, mid: float, iters: int = 400):
    """Scores of the full model with per-label biases and a temperature fit on 30% of the newest year."""
    newest = max(r["year"] or 0 for r in fit_rows)
    held = {r["id"] for r in fit_rows if r["year"] == newest and zlib.crc32(r["id"].encode()) % 100 < 30}
    rest = [r for r in fit_rows if r["id"] not in held]
    hold = [r for r in fit_rows if r["id"] in held]
    x, xh = features([prep(r["description"]) for r in rest], [prep(r["description"]) for r in hold], False)
    s = svm_scores(x, y_of(rest), recency_weights(rest, newest_weight, mid), xh, c)
    y = y_of(hold)
    d, log_t = np.zeros(s.shape[1]), 0.0
    for _ in range(iters):  # softmax cross-entropy in (d, log T), plain gradient descent
        z = s / np.exp(log_t) + d
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = p.copy()
        g[np.arange(len(y)), y] -= 1
        g /= len(y)
        d -= 0.5 * (g.sum(0) + 0.01 * d)
        log_t -= 0.05 * float((g * (-s / np.exp(log_t))).sum())
    x, xt = features([prep(r["description"]) for r in fit_rows], test_texts, False)
    return svm_scores(x, y_of(fit_rows), recency_weights(fit_rows, newest_weight, mid), xt, c) / np.exp(log_t) + d


def mlp_scores(x, y, w, xt, n_labels: int, hidden: int = 256, epochs: int = 5, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def sparse(m):
        m = m.tocoo()
        return torch.sparse_coo_tensor(np.vstack([m.row, m.col]), m.data, m.shape).coalesce()

    w1 = torch.nn.Parameter(torch.randn(x.shape[1], hidden) * 0.01)
    b1 = torch.nn.Parameter(torch.zeros(hidden))
    head = torch.nn.Linear(hidden, n_labels)
    drop = torch.nn.Dropout(0.3)
    opt = torch.optim.Adam([w1, b1, *head.parameters()], lr=2e-3)
    yt, wt = torch.tensor(y), torch.tensor(w, dtype=torch.float32)
    x = x.tocsr()
    for _ in range(epochs):
        order = rng.permutation(x.shape[0])
        for i in range(0, x.shape[0], 256):
            b = order[i:i + 256]
            logits = head(drop(torch.relu(torch.sparse.mm(sparse(x[b]), w1) + b1)))
            loss = (torch.nn.functional.cross_entropy(logits, yt[b], reduction="none") * wt[b]).sum() / wt[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return torch.cat([head(torch.relu(torch.sparse.mm(sparse(xt[i:i + 4096]), w1) + b1))
                          for i in range(0, xt.shape[0], 4096)]).numpy()


def stable_terms(x, xt, years, k: int):
    """Keep the columns of terms that occur in at least k distinct training years."""
    present = sum((x[years == y].getnnz(axis=0) > 0).astype(int) for y in np.unique(years))
    keep = np.flatnonzero(present >= k)
    return x[:, keep], xt[:, keep]


def near_twins(x, threshold: float = 0.9, block: int = 2000):
    """For each row, how many training rows (itself included) have TF-IDF cosine >= threshold with it."""
    x = x.tocsr()
    counts = np.zeros(x.shape[0])
    for i in range(0, x.shape[0], block):
        sims = x[i:i + block] @ x.T
        counts[i:i + block] = np.asarray((sims >= threshold).sum(axis=1)).ravel()
    return np.maximum(counts, 1)


def shift_weights(x, newest, power: float):
    """Importance weights for covariate shift: older rows get (odds that a row is from the newest year,
    scaled by the year sizes, clipped to 0.1-10) ** power, normalised to mean 1; newest rows keep 1."""
    from sklearn.linear_model import LogisticRegression

    newest = np.asarray(newest)
    p = LogisticRegression(C=1.0, max_iter=1000).fit(x, newest).predict_proba(x)[:, 1]
    odds = np.clip(p / (1 - p) * (~newest).sum() / newest.sum(), 0.1, 10) ** power
    odds[~newest] /= odds[~newest].mean()
    return np.where(newest, 1.0, odds)


def standardised(s):
    return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9)


def run(variant: str, train, test, year: int, vectors: dict | None = None) -> dict:
    start = time.time()
    opts = dict(c=0.5, newest=4.0, mid=1.5, support=10, char=False, ngrams=2)
    opts.update({"recency8": dict(newest=8.0), "recency16": dict(newest=16.0), "mid3": dict(mid=3.0),
                 "c025": dict(c=0.25), "c1": dict(c=1.0), "support5": dict(support=5), "char": dict(char=True),
                 "trigram": dict(ngrams=3)}
                .get(variant, {}))
    train, _ = modernise(train)
    balance = float(variant[len("balance"):] or 0.8) if variant.startswith("balance") else 0.0
    if variant.startswith(ON_CONVENTION):
        threshold = float(variant[len("convention"):] or 0.5) if variant.startswith("convention") else 0.5
        train, _ = newest_conventions(train, threshold, balance=balance)
    if variant in ("catalog", "observed"):
        train = catalog_relabel(train)
    extra = observed_examples(year) if variant == "observed" else []
    support = Counter(r["cwe"] for r in train)
    categories = _categories(support)
    labels = sorted(c for c, n in support.items() if n >= opts["support"] and c not in categories)
    index = {c: i for i, c in enumerate(labels)}
    fit_rows = [r for r in train if r["cwe"] in index]
    extra = [r for r in extra if r["cwe"] in index]
    test_texts = [prep(r["description"]) for r in test]

    def y_of(rows):
        return np.array([index[r["cwe"]] for r in rows])

    if variant == "bias":
        s = bias_tuned_scores(fit_rows, test_texts, y_of, opts["c"], opts["newest"], opts["mid"])
    elif variant == "multilabel":
        rows = [{**r, "cwe": c, "share": 1 / len(cs)} for r in fit_rows
                for cs in [[c for c in dict.fromkeys(r["cwes"]) if c in index] or [r["cwe"]]] for c in cs]
        x, xt = features([prep(r["description"]) for r in rows], test_texts, False)
        w = recency_weights(rows, opts["newest"], opts["mid"]) * np.array([r["share"] for r in rows])
        s = svm_scores(x, y_of(rows), w, xt, opts["c"])
    elif variant in ("minilm", "minilm_tfidf"):
        from scipy.sparse import csr_matrix, hstack

        e, et = (np.stack([vectors[r["id"]] for r in part]) for part in (fit_rows, test))
        w = recency_weights(fit_rows, opts["newest"], opts["mid"])
        if variant == "minilm":
            s = svm_scores(e, y_of(fit_rows), w, et, 1.0)
        else:
            x, xt = features([prep(r["description"]) for r in fit_rows], test_texts, False)
            s = svm_scores(hstack([x, csr_matrix(0.5 * e)]).tocsr(), y_of(fit_rows), w,
                           hstack([xt, csr_matrix(0.5 * et)]).tocsr(), opts["c"])
    else:
        rows = fit_rows + extra
        x, xt = features([prep(r["description"]) for r in rows], test_texts, opts["char"], opts["ngrams"])
        w = np.concatenate([recency_weights(fit_rows, opts["newest"], opts["mid"]), np.ones(len(extra))])
        if variant == "stable2":
            x, xt = stable_terms(x, xt, np.array([r["year"] for r in rows]), 2)
        if variant == "twins":
            w = w / near_twins(x)
        if variant.startswith("discouraged"):
            flagged, factor = discouraged_labels(labels), float(variant[len("discouraged"):] or 0.25)
            w = w * label_weights(rows, flagged, factor)
        if variant.startswith(("copy", *ON_CONVENTION)):
            k = float(variant[len("copy"):] or 0.5) if variant.startswith("copy") else 0.5
            last = newest_year(rows)
            is_newest = [r["year"] == last for r in rows]
            w = label_weights(rows, discouraged_labels(labels), 0.25)  # flat: the copy replaces recency weights
            w = w * class_balance_weights(y_of(rows), w, balance)
            if variant.startswith("shift"):
                w = w * shift_weights(x, is_newest, float(variant[len("shift"):] or 0.6))
            x = newest_year_copy(x, is_newest, k)
            xt = newest_year_copy(xt, np.ones(xt.shape[0], bool), k)  # a new CVE counts as the newest year
        if variant == "mlp":
            s = mlp_scores(x, y_of(rows), w, xt, len(labels))
        else:
            s = svm_scores(x, y_of(rows), w, xt, opts["c"])
        if variant == "lr":
            lr = lr_scores(x, y_of(rows), w, xt)
            s = s / s.std() + lr / lr.std()
        if variant == "cnb":
            from sklearn.naive_bayes import ComplementNB

            nb = ComplementNB(alpha=0.3).fit(x, y_of(rows), sample_weight=w).predict_log_proba(xt)
            s = standardised(s) + 0.3 * standardised(nb)
    top = (-s).argsort(axis=1)[:, :3]
    metrics = evaluate([[(labels[j], 1.0) for j in row] for row in top], test, labels)
    metrics.pop("ece")  # scores here are not calibrated probabilities
    hits = np.array([labels[row[0]] in r["cwes"] for row, r in zip(top, test, strict=True)])
    return {"variant": variant, "test_year": year, **metrics, "labels": len(labels), "extra_rows": len(extra),
            "seconds": round(time.time() - start)}, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=Path, default=Path("/work/shared/data/nvd"))
    parser.add_argument("--only", default=",".join(VARIANTS))
    parser.add_argument("--years", default="2021,2022",
                        help="each year Y trains on the years before it: 2021 = validation, 2022 = test, "
                        "2019 = the one-year-gap check")
    parser.add_argument("--out", type=Path, default=Path("triage_variants.jsonl"))
    parser.add_argument("--embeddings", type=Path, default=Path("triage_minilm.npz"),
                        help="MiniLM embedding cache for the minilm variants (built when missing)")
    args = parser.parse_args()
    results = JsonlAppender(args.out)
    done = {(d["variant"], d["test_year"]) for d in results.read()}
    rows = load_rows(sorted(args.feeds.glob("*.json*")))
    wanted = {(v, int(y)) for v in args.only.split(",") for y in args.years.split(",")} - done
    vectors = embeddings(rows, args.embeddings) if any(v.startswith("minilm") for v, _ in wanted) else None
    for year in (int(y) for y in args.years.split(",")):
        train, test, stats = split([r for r in rows if r["year"] is not None and r["year"] <= year], year)
        print(json.dumps({"split": stats}), flush=True)
        base_hits = None
        for variant in args.only.split(","):
            if (variant, year) in done:
                continue
            result, hits = run(variant, train, test, year, vectors)
            if variant == "base":
                base_hits = hits
            elif base_hits is not None:
                b, c = int((base_hits & ~hits).sum()), int((~base_hits & hits).sum())
                z = round((c - b) / max(b + c, 1) ** 0.5, 2)  # McNemar's test on the rows the two disagree on
                result["vs_base"] = {"base_only": b, "variant_only": c, "paired_z": z}
            print(json.dumps(result), flush=True)
            results.write(result)


if __name__ == "__main__":
    main()
