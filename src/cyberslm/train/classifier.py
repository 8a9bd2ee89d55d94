"""`cyberslm train classifier`: learn CVE description -> CWE from a labelled table or CVE feeds.

Recipe (chosen on the temporal NVD split, see docs/bench/triage.md): old NVD labels modernised to the
ids NVD assigns today (`modernise`), older rows relabelled to the related CWE the newest year would give
them (`newest_conventions`), rows whose label MITRE's mapping guidance discourages weighted down
(`discouraged_labels`), word 1-2-gram sublinear TF-IDF, a one-vs-rest linear SVM, weights pruned to the
largest entries, a copy of the newest training year's features so that year can correct how older years
label (`newest_year_copy`), a fixed score boost for a CWE the description names itself (`stated_boost`: on the 2021
validation split the named CWE was among the record's labels 64 times in 66; also for a catalog name that
the training rows show can be trusted, `trusted_names`), and a softmax temperature
with a small uniform mixture fit on a validation split so probabilities are calibrated. Labels with fewer
than `min_support` training rows are dropped from training (they are rare; the classifier never predicts
them) and counted in the manifest.
Test rows whose id or near-duplicate description also occurs in training are removed (decontamination).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import typer

from cyberslm.errors import CyberslmError
from cyberslm.io import read_jsonl


# -- data ------------------------------------------------------------------------------------------------
def load_rows(paths: list[Path]) -> list[dict]:
    """Rows {id, description, cwe, cwes, year} from tables (`cyberslm data cwe` .jsonl/.parquet) or CVE feeds."""
    from cyberslm.data.cwe_table import cwe_row
    from cyberslm.data.reader import read_cves

    rows: dict[str, dict] = {}
    for path in paths:
        if not path.exists():
            raise CyberslmError(f"{path}: no such file or folder")
        if path.suffix == ".jsonl":
            for n, row in read_jsonl(path):
                if not isinstance(row.get("description"), str) or "cwe" not in row or "id" not in row:
                    raise CyberslmError(f"{path}: line {n}: not a CWE table row (needs id, description, cwe)")
                rows[row["id"]] = row
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for row in pq.read_table(path).to_pylist():
                rows[row["id"]] = row
        else:
            for record in read_cves(path):
                if record.real_cwes:
                    rows[record.id] = cwe_row(record)
    out = []
    for row in rows.values():
        row.setdefault("cwes", [row["cwe"]])
        if row.get("year") is None:
            row["year"] = _year(row["id"])
        if row["cwe"] and str(row["cwe"]).startswith("CWE-") and row["description"]:
            out.append(row)
    if not out:
        raise CyberslmError(f"{', '.join(map(str, paths))}: no rows with a real CWE label")
    return out


def _year(cve_id: str) -> int | None:
    parts = str(cve_id).split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def split(rows: list[dict], test_year: int | None, seed: int = 0, near_dup: float = 0.8):
    """(train, test, stats): test = rows of `test_year` (default: the newest year), decontaminated.

    A table holding one year only gets a seeded random 20% test split instead.
    """
    from cyberslm.data.decontam import Exclusions

    years = {r["year"] for r in rows if r["year"] is not None}
    year = test_year if test_year is not None else (max(years) if len(years) > 1 else None)
    if year is not None:
        train = [r for r in rows if r["year"] != year]
        test = [r for r in rows if r["year"] == year]
    else:
        shuffled = sorted(rows, key=lambda r: r["id"])
        random.Random(seed).shuffle(shuffled)
        cut = max(1, len(shuffled) // 5)
        test, train = shuffled[:cut], shuffled[cut:]
    if not train or not test:
        raise CyberslmError(f"temporal split on year {year}: {len(train)} train and {len(test)} test rows")
    seen = Exclusions(
        ids=[r["id"] for r in train], descriptions=[r["description"] for r in train], threshold=near_dup
    )
    kept = [
        r for r in test if r["id"].upper() not in seen.ids and not seen.is_near_duplicate(r["description"])
    ]
    stats = {
        "test_year": year,
        "train_rows": len(train),
        "test_rows_before_decontam": len(test),
        "test_rows": len(kept),
        "test_dropped_near_duplicates": len(test) - len(kept),
    }
    return train, kept, stats


# -- label modernisation -----------------------------------------------------------------------------------
# NVD's mapping moved from coarse ids (CWE-119, CWE-284) and CWE *categories* (CWE-264, CWE-255, ...) to
# finer weaknesses of the CWE-1003 view (CWE-787, CWE-125, CWE-269, ...). A training row with an old label
# is relabelled to the finer id its description names, so old rows teach the labels NVD assigns now
# instead of competing with them. For weaknesses the targets are descendants in the research view
# (CWE-119 -> 787, 125, 416 via 825; CWE-284 -> 269, 732 and 863 via 285); categories have no children,
# so their targets are the weaknesses NVD uses for the same words. First matching rule wins; a row that
# matches none keeps its label (categories are then dropped from training as before).
def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


_UAF = _rx(r"use[- ]after[- ]free")
_OOB_READ = _rx(
    r"out[- ]of[- ]bounds? read|over-?read|read (?:access )?(?:violation|out of bounds)|invalid read"
)
_OOB_WRITE = _rx(r"out[- ]of[- ]bounds? write|overflow|overwrite|write|memory corruption|corrupt")
_PRIVILEGE = (_rx(r"privilege|root access|as root|elevat"), "CWE-269")
_PERMISSION = (_rx(r"permission"), "CWE-732")
_AUTHZ = (_rx(r"authori[sz]|bypass|access control"), "CWE-863")
_ANY = _rx(r".")
MODERNISE: dict[str, list[tuple[re.Pattern, str]]] = {
    "CWE-119": [
        (_UAF, "CWE-416"),
        (_OOB_READ, "CWE-125"),
        (_OOB_WRITE, "CWE-787"),
        (_rx(r"\bread"), "CWE-125"),
    ],
    "CWE-284": [_PRIVILEGE, _PERMISSION, _AUTHZ],
    "CWE-264": [_PRIVILEGE, _PERMISSION, _AUTHZ],
    "CWE-255": [
        (_rx(r"hard[- ]?coded|default (?:password|credential)"), "CWE-798"),
        (_rx(r"clear[- ]?text|plain[- ]?text"), "CWE-312"),
        (_ANY, "CWE-522"),
    ],
    "CWE-310": [
        (_rx(r"clear[- ]?text|plain[- ]?text"), "CWE-319"),
        (_rx(r"certificate"), "CWE-295"),
        (_ANY, "CWE-327"),
    ],
    "CWE-399": [
        (_UAF, "CWE-416"),
        (_rx(r"memory leak"), "CWE-401"),
        (_rx(r"denial of service|consum|exhaust"), "CWE-400"),
    ],
    "CWE-189": [
        (_rx(r"integer (?:overflow|underflow|wrap)|wraparound"), "CWE-190"),
        (_rx(r"divi(?:de|sion) by zero"), "CWE-369"),
    ],
}


def relabel(row: dict, new: str, moves: Counter) -> dict:
    """A copy of `row` whose first label is `new` (its other labels kept), counted in `moves` as 'old->new'."""
    moves[f"{row['cwe']}->{new}"] += 1
    return {**row, "cwe": new, "cwes": [new, *(c for c in row["cwes"] if c != new)]}


def newest_year(rows: list[dict]) -> int:
    return max((r["year"] or 0) for r in rows)


def modernise(rows: list[dict]) -> tuple[list[dict], Counter]:
    """Rows with old NVD labels relabelled by `MODERNISE`; returns (rows, Counter of 'old->new' moves)."""
    out, moves = [], Counter()
    for row in rows:
        for pattern, new in MODERNISE.get(row["cwe"], ()):
            if pattern.search(row["description"]):
                row = relabel(row, new, moves)
                break
        out.append(row)
    return out, moves


def newest_conventions(
    rows: list[dict],
    threshold: float = 0.5,
    min_support: int = 10,
    seed: int = 0,
    balance: float = 0.0,
    weaknesses_only: bool = True,
) -> tuple[list[dict], Counter]:
    """Older rows relabelled to the CWE the newest year would give them, where the two are one family.

    Within a family NVD and the CNAs switch conventions from year to year: "command injection" was CWE-78
    and is now more often CWE-77, a memory leak CWE-772 and now CWE-401. A model trained on the newest
    year's rows alone reads each older row; where its first CWE differs from the row's label, is related to
    it (kb.cwe_related: ancestor, descendant or sibling in CWE-1000) and has probability >= `threshold`,
    the row takes that CWE. Unrelated disagreements stay, since they are more often that model's errors
    than conventions. The judge is trained like the final model (`balance`, `weaknesses_only`).
    Returns (rows, Counter of 'old->new' moves)."""
    from cyberslm.knowledge import load_knowledge

    last = newest_year(rows)
    newest = [r for r in rows if (r["year"] or 0) == last]
    older = [r for r in rows if (r["year"] or 0) != last]
    if not older:
        return rows, Counter()
    try:
        judge, _ = fit(newest, min_support, newest_copy=0.0, convention=0.0, balance=balance,
                       weaknesses_only=weaknesses_only, modernise_labels=False, seed=seed)
    except CyberslmError:  # too few newest-year rows per label to learn its conventions from
        return rows, Counter()
    kb = load_knowledge()
    out, moves = [], Counter()
    for row, top in zip(older, judge.predict_topk([r["description"] for r in older], k=1), strict=True):
        new, p = top[0]
        out.append(relabel(row, new, moves) if new != row["cwe"] and p >= threshold
                   and kb.cwe_related(new, row["cwe"]) else row)
    return out + newest, moves


# -- model -----------------------------------------------------------------------------------------------
def calibration_split(rows: list[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(rows to fit, rows held out for calibration), both in a seeded order. The held-out rows are 15% of
    the newest year, the rows most like the data the model will meet, so probabilities are calibrated for
    drift, not for old years."""
    rows = sorted(rows, key=lambda r: r["id"])
    random.Random(seed).shuffle(rows)
    last = newest_year(rows)
    recent = [r for r in rows if (r["year"] or 0) == last]
    held = {r["id"] for r in recent[: max(1, len(recent) * 15 // 100)]}
    return [r for r in rows if r["id"] not in held], [r for r in rows if r["id"] in held]


def fit(
    train: list[dict],
    min_support: int = 10,
    min_df: int = 2,
    c: float = 0.5,
    max_weights: int = 2_500_000,
    recency: float = 1.0,
    newest_copy: float = 0.5,
    convention: float = 0.5,
    discouraged: float = 0.25,
    balance: float = 0.0,
    stated_boost: float = 2.0,
    name_precision: float = 0.8,
    weaknesses_only: bool = True,
    modernise_labels: bool = True,
    seed: int = 0,
    progress=lambda msg: None,
):
    """Train and calibrate a CweClassifier on `train` rows; returns (classifier, info)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.svm import LinearSVC

    from cyberslm.models.cwe_classifier import CweClassifier, tokenize

    moves = Counter()
    if modernise_labels:
        train, moves = modernise(train)
        progress(f"modernised {sum(moves.values())} old labels")
    conventions = Counter()
    if convention:
        progress("newest-year conventions: a model of the newest year reads the older rows")
        train, conventions = newest_conventions(train, convention, min_support, seed=seed, balance=balance,
                                                weaknesses_only=weaknesses_only)
        progress(f"relabelled {sum(conventions.values())} older rows to the newest year's convention")
    fit_rows, val = calibration_split(train, seed)
    last_year = newest_year(train)
    support = Counter(r["cwe"] for r in fit_rows)
    categories = _categories(support) if weaknesses_only else set()
    labels = sorted(
        (c_ for c_, n in support.items() if n >= min_support and c_ not in categories),
        key=lambda s: int(s.split("-")[1]),
    )
    if len(labels) < 2:
        raise CyberslmError(
            f"only {len(labels)} CWE label(s) have >= {min_support} training rows; "
            "give more data or a lower --min-support"
        )
    index = {c_: i for i, c_ in enumerate(labels)}
    dropped_rare = sum(1 for r in fit_rows if r["cwe"] not in index)
    fit_rows = [r for r in fit_rows if r["cwe"] in index]

    progress(f"vocabulary over {len(fit_rows)} rows")
    df = Counter()
    for r in fit_rows:
        df.update(set(tokenize(r["description"])))
    terms = sorted(t for t, n in df.items() if n >= min_df)
    vocab = {t: i for i, t in enumerate(terms)}
    n = len(fit_rows)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in terms], np.float32)
    bare = CweClassifier(
        vocab,
        idf,
        csr_matrix((len(terms), len(labels)), dtype=np.float32),
        np.zeros(len(labels), np.float32),
        labels,
    )
    x = bare.vectorize([r["description"] for r in fit_rows])
    y = np.array([index[r["cwe"]] for r in fit_rows])

    progress(f"linear SVM: {x.shape[0]} rows x {x.shape[1]} features x {len(labels)} labels")
    # NVD's labelling drifts (CWE-119 -> CWE-787, CWE-200 -> finer ids). The newest-year feature copy
    # (newest_year_copy) lets the newest year correct the older years; it replaced recency weights (newest
    # year x4, the two before x1.5), which it beat on the 2021 validation split (docs/bench/triage.md).
    # Discouraged labels: see discouraged_labels() for why their rows weigh less. class_balance_weights() is
    # off by default: it won on validation and lost top-1 on the 2022 test split.
    flagged = discouraged_labels(labels)
    weight = recency_weights(fit_rows, recency) if recency != 1 else np.ones(len(fit_rows))
    weight = weight * label_weights(fit_rows, flagged, discouraged)
    weight = weight * class_balance_weights(y, weight, balance)
    if newest_copy:
        x = newest_year_copy(x, [r["year"] == last_year for r in fit_rows], newest_copy)
    svm = LinearSVC(C=c, random_state=seed).fit(x, y, sample_weight=weight)
    coef, intercept = svm.coef_, svm.intercept_
    if newest_copy:  # a new CVE counts as the newest year: its features are [x, k x], so fold the copy in
        coef = coef[:, : len(terms)] + newest_copy * coef[:, len(terms) :]
    if len(labels) == 2:  # sklearn gives one decision function for two classes: its sign picks labels[1]
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    w = coef.T.astype(np.float32)  # features x labels
    if w.size > max_weights:  # keep the largest weights: the rest barely move a score
        cut = np.partition(np.abs(w).ravel(), w.size - max_weights)[w.size - max_weights]
        w[np.abs(w) < cut] = 0
    used = np.flatnonzero(np.abs(w).sum(axis=1) > 0)  # drop features that lost every weight
    vocab = {t: j for j, t in enumerate(terms[i] for i in used)}
    clf = CweClassifier(
        vocab,
        idf[used],
        csr_matrix(w[used].astype(np.float16).astype(np.float32)),
        intercept.astype(np.float32),
        labels,
        stated_boost=stated_boost,  # before calibration, so the temperature sees the scores triage will see
        stated_names=trusted_names(fit_rows, labels, name_precision) if name_precision else None,
    )

    progress("calibration (temperature, mixture) on the validation split")
    val_in = [r for r in val if r["cwe"] in index]
    clf.temperature, clf.mixture, val_nll = fit_calibration(clf.scores([r["description"] for r in val_in]),
                                                            np.array([index[r["cwe"]] for r in val_in]))
    info = {
        "labels": len(labels),
        "min_support": min_support,
        "fit_rows": len(fit_rows),
        "validation_rows": len(val_in),
        "validation": f"15% of {last_year}",
        "features": len(vocab),
        "nonzero_weights": int(clf.weights.nnz),
        "temperature": round(clf.temperature, 4),
        "mixture": round(clf.mixture, 4),
        "validation_nll": round(val_nll, 4),
        "dropped_rare_label_rows": dropped_rare,
        "dropped_rare_labels": len(support) - len(labels) - len(categories),
        "dropped_category_labels": sorted(categories, key=lambda s: int(s.split("-")[1])),
        "modernised_labels": dict(moves.most_common()),
        "convention_threshold": convention,
        "convention_relabels": dict(conventions.most_common()),
        "C": c,
        "min_df": min_df,
        "recency_weight": recency,
        "newest_copy": newest_copy,
        "discouraged_weight": discouraged,
        "discouraged_labels": len(flagged),
        "discouraged_rows": sum(1 for r in fit_rows if r["cwe"] in flagged),
        "class_balance": balance,
        "stated_boost": stated_boost,
        "name_precision": name_precision,
        "stated_names": len(clf.stated_names),
    }
    return clf, info


def trusted_names(rows: list[dict], labels: list[str], precision: float, min_rows: int = 5) -> dict[str, str]:
    """{name phrase: label} for the labels whose catalog name (`name_phrase`) a description may be trusted
    to state: it occurs in at least `min_rows` of `rows`, and at least `precision` of those rows have that
    label. Juniper, Samsung and other CNAs open with the weakness by name ("An Improper Check for Unusual or
    Exceptional Conditions vulnerability in ..."), while other names are plain words that come with many
    labels ("Improper Access Control" is CWE-284 in a few rows of every ten), so each name is checked
    against the training rows (docs/bench/triage.md; the manifest counts the names kept)."""
    from cyberslm.knowledge import load_knowledge
    from cyberslm.models.cwe_classifier import find_names, name_patterns, name_phrase

    kb = load_knowledge()
    phrases = {}
    for label in labels:
        weakness = kb.weakness(label)
        name = name_phrase(weakness.name) if weakness is not None else ""
        if len(name.split()) >= 2:  # one-word names ("Reflection") are too common as plain words
            phrases[name] = label
    if not phrases:
        return {}
    patterns = name_patterns(phrases)
    seen, right = Counter(), Counter()
    for r in rows:
        for name in {name for _, name in find_names(patterns, r["description"].lower())}:
            seen[name] += 1
            right[name] += phrases[name] in r["cwes"]
    return {p: phrases[p] for p in sorted(seen) if seen[p] >= min_rows and right[p] >= precision * seen[p]}


def recency_weights(rows: list[dict], newest: float, before: float = 1.5):
    """Sample weights: `newest` for rows of the newest year, `before` for the two years before it, else 1."""
    import numpy as np

    last = newest_year(rows)
    age = np.array([last - (r["year"] or 0) for r in rows])
    return np.where(age == 0, newest, np.where(age <= 2, before, 1.0))


def newest_year_copy(x, newest, k: float):
    """Features [x, k x] for rows of the newest year and [x, 0] for the others (Daume III, "Frustratingly
    Easy Domain Adaptation", 2007). The SVM learns weights shared by all years plus corrections that only
    the newest year's rows see, with the same regularization: a term whose label NVD assigns differently
    now (CWE-119 -> CWE-787, CWE-200 -> CWE-668) moves in the newest year without the older years' rows
    outvoting it, and a term the newest year barely uses keeps what the older rows taught. On the 2021
    validation split, k = 0.5 with flat weights beat the x4 recency weights shipped before by 0.5 points top-1
    (paired z 3.1; docs/bench/triage.md)."""
    import numpy as np
    from scipy.sparse import diags, hstack

    return hstack([x, diags(np.asarray(newest, np.float32) * k) @ x]).tocsr()


def discouraged_labels(labels) -> set[str]:
    """Labels that MITRE's mapping guidance marks Discouraged: CWE-20, CWE-200, CWE-119, CWE-400, ..., classes
    that have more precise children.

    Why fit() gives their rows less weight: NVD and the CNAs follow that guidance more and more. CWE-20 was
    9-10% of the labels in 2017-2019 and 3.7% in 2021, CWE-200 7-10% and 2.8%, so older rows with those
    labels teach a model to predict them far more often than new CVEs get them. On the 2021 validation
    split, weight 0.25 beat 1 by 1.0 point top-1 (paired z 4.9; docs/bench/triage.md)."""
    from cyberslm.knowledge import load_knowledge

    kb = load_knowledge()
    return {c for c in labels if (w := kb.weakness(c)) is not None and w.mapping_usage == "Discouraged"}


def label_weights(rows: list[dict], flagged: set[str], factor: float):
    """Sample weights: `factor` for rows whose label is in `flagged`, else 1."""
    import numpy as np

    return np.array([factor if r["cwe"] in flagged else 1.0 for r in rows])


def class_balance_weights(y, weight, power: float):
    """Per-row factors that move every label's total weight towards an equal share: a row of label c gets
    (mean total / total of c) ** power, where a label's total is the sum of its rows' `weight`. With power 0
    nothing changes; with 1 every label weighs the same; in between a label's total becomes proportional
    to total ** (1 - power).

    Why it exists, and why fit() leaves it off: which CWEs NVD assigns shifts from year to year, so the
    training years' label frequencies are a poor prior for new CVEs, and a linear SVM trained on them
    favours the labels that were frequent. Flattening that prior won on the 2021 validation split (top-1
    0.628 -> 0.648 at power 0.8, with top-3, macro-F1 and ECE better too), but on the 2022 test split it cost
    top-1 (0.714 -> 0.706) while top-3, macro-F1 and ECE still improved: 2021 was flatter than 2019, while
    2022 leans harder on some frequent labels (CWE-89 tripled). It is a bet on the direction of the drift,
    so it is an option (`--balance 0.8`) for users who value rare CWEs and the top three over the first
    guess (docs/bench/triage.md). The totals include the Discouraged-label factor, so flattening also gives
    back part of what that factor took from a Discouraged label's total, while its rows still weigh less
    than their neighbours'."""
    import numpy as np

    if not power:
        return np.ones(len(y))
    totals = np.bincount(y, weights=weight)
    present = totals > 0
    return ((totals[present].mean() / np.where(present, totals, 1.0)) ** power)[y]


def fit_calibration(scores, y, mixtures=None) -> tuple[float, float, float]:
    """(temperature, mixture, NLL): the pair that minimises the negative log-likelihood of labels `y` (indices)
    under p = (1 - mixture) softmax(scores / temperature) + mixture / n_labels. Grid search: temperature in
    [0.01, 10] (200 log-spaced steps), mixture in `mixtures` (default 0 to 0.3 in steps of 0.005; pass (0,)
    for a temperature alone)."""
    import numpy as np

    from cyberslm.models.cwe_classifier import softmax

    mixtures = np.linspace(0, 0.3, 61) if mixtures is None else np.asarray(mixtures, dtype=float)
    k = scores.shape[1]
    best = (float("inf"), 1.0, 0.0)
    for t in np.exp(np.linspace(math.log(0.01), math.log(10), 200)):
        p_true = softmax(scores / t)[np.arange(len(y)), y]
        nll = -np.log((1 - mixtures[:, None]) * p_true + mixtures[:, None] / k + 1e-12).mean(axis=1)
        i = int(np.argmin(nll))
        best = min(best, (float(nll[i]), float(t), float(mixtures[i])))
    return best[1], best[2], best[0]


def _categories(labels) -> set[str]:
    """Labels that are CWE categories (CWE-264, CWE-399, ...), not weaknesses. NVD stopped assigning them,
    so a model that predicts them is wrong on new CVEs; their rows are left out of training."""
    from cyberslm.knowledge import load_knowledge

    kb = load_knowledge()
    return {c for c in labels if (entry := kb.get(c)) is not None and entry.kind == "cwe-category"}


def evaluate(
    topk: list[list[tuple[str, float]]], rows: list[dict], labels: list[str], bins: int = 15
) -> dict:
    """top-1 strict (best prediction is one of the row's CWEs), top-3, macro-F1 over labels, ECE of top-1."""
    import numpy as np

    hit1 = np.array([p[0][0] in r["cwes"] for p, r in zip(topk, rows, strict=True)], float)
    hit3 = np.array([any(c in r["cwes"] for c, _ in p[:3]) for p, r in zip(topk, rows, strict=True)], float)
    conf = np.array([p[0][1] for p in topk])
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    ece = sum(
        abs(hit1[which == b].mean() - conf[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )
    return {
        "top1": round(float(hit1.mean()), 4),
        "top3": round(float(hit3.mean()), 4),
        "macro_f1": round(macro_f1(topk, rows, labels), 4),
        "ece": round(float(ece), 4),
        "rows": len(rows),
    }


def macro_f1(topk: list[list[tuple[str, float]]], rows: list[dict], labels: list[str]) -> float:
    """Macro-F1 over `labels`; the truth is the predicted CWE when it is one of the row's CWEs, else its first."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for p, r in zip(topk, rows, strict=True):
        pred = p[0][0]
        truth = pred if pred in r["cwes"] else r["cwe"]
        if pred == truth:
            tp[pred] += 1
        else:
            fp[pred] += 1
            fn[truth] += 1
    f1 = [2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else 0.0 for c in labels]
    return sum(f1) / len(f1) if f1 else 0.0


def sha256(path: Path) -> str:
    if path.is_dir():
        return "folder"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- command ---------------------------------------------------------------------------------------------
def classifier_command(
    inputs: list[Path] = typer.Argument(
        ..., help="CWE table(s) from `cyberslm data cwe` (.jsonl/.parquet) or CVE feeds."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Artifact folder to write (safetensors + JSON)."),
    test_year: int = typer.Option(
        None, "--test-year", help="Held-out year (default: the newest year in the data)."
    ),
    exclude: list[Path] = typer.Option(
        [], "--exclude", help="Benchmark file (CTI-Bench TSV or id list) to keep out of training; repeatable."
    ),
    min_support: int = typer.Option(
        10, "--min-support", help="Train only on CWE labels with at least this many rows."
    ),
    c: float = typer.Option(
        0.5, "--c", help="SVM regularization (higher: fit the training data more closely)."
    ),
    max_weights: int = typer.Option(
        2_500_000, "--max-weights", help="Keep this many largest weights (artifact size)."
    ),
    recency: float = typer.Option(
        1.0,
        "--recency",
        help="Weight of the newest training year's rows, the two years before then weigh 1.5 (1 = flat; "
        "the newest-year copy does this job by default).",
    ),
    newest_copy: float = typer.Option(
        0.5,
        "--newest-copy",
        help="Give the newest training year's rows a copy of their features scaled by this, so the model "
        "learns how that year labels differently (0 = off).",
    ),
    convention: float = typer.Option(
        0.5,
        "--convention",
        help="Relabel an older row to the related CWE (parent, child or sibling) that a model of the newest "
        "year gives it with at least this probability, so old rows follow today's convention (0 = off).",
    ),
    discouraged: float = typer.Option(
        0.25,
        "--discouraged-weight",
        help="Weight of rows labelled with a CWE that MITRE's mapping guidance marks Discouraged (1 = flat).",
    ),
    balance: float = typer.Option(
        0.0,
        "--balance",
        help="Move each label's total row weight towards an equal share: 0 = as in the data (default), "
        "1 = equal. On 2022, 0.8 cost 0.8 points of top-1 and gained top-3, macro-F1 and calibration.",
    ),
    stated_boost: float = typer.Option(
        2.0,
        "--stated-boost",
        help="Added to the score of a CWE the description names itself (\"A CWE-787: ...\"); 0 = off.",
    ),
    name_precision: float = typer.Option(
        0.8,
        "--name-precision",
        help="Also boost a CWE the description names by its catalog name, for names that come with their "
        "CWE in at least this share of training rows (0 = ids only).",
    ),
    all_labels: bool = typer.Option(
        False,
        "--keep-categories",
        help="Also train on rows labelled with CWE categories (CWE-264, ...), which NVD no longer assigns.",
    ),
    keep_old_labels: bool = typer.Option(
        False,
        "--keep-old-labels",
        help="Train on NVD's old labels as they are (no CWE-119 -> CWE-787/125/416 style modernisation).",
    ),
    final: bool = typer.Option(
        False, "--final", help="After measuring, retrain on train + test rows for the shipped artifact."
    ),
) -> None:
    """Train the fast CPU CWE classifier; writes the artifact and its manifest (with held-out metrics)."""
    from rich.console import Console

    from cyberslm.data.decontam import load_exclusions

    console = Console(stderr=True)
    say = lambda msg: console.log(msg)  # noqa: E731
    started = time.time()
    rows = load_rows(inputs)
    excluded = 0
    if exclude:
        ex = load_exclusions(exclude)
        keep = [
            r for r in rows if r["id"].upper() not in ex.ids and not ex.is_near_duplicate(r["description"])
        ]
        excluded, rows = len(rows) - len(keep), keep
    say(f"{len(rows)} labelled rows ({excluded} excluded as benchmark)")
    train, test, split_stats = split(rows, test_year)
    say(f"split: {split_stats}")
    fit_options = dict(
        min_support=min_support,
        c=c,
        max_weights=max_weights,
        recency=recency,
        newest_copy=newest_copy,
        convention=convention,
        discouraged=discouraged,
        balance=balance,
        stated_boost=stated_boost,
        name_precision=name_precision,
        weaknesses_only=not all_labels,
        modernise_labels=not keep_old_labels,
        progress=say,
    )
    clf, info = fit(train, **fit_options)
    metrics = evaluate(clf.predict_topk([r["description"] for r in test], k=3), test, clf.labels)
    say(f"held-out: {metrics}")
    if final:
        clf, info = fit(train + test, **fit_options)
    years = sorted({r["year"] for r in (train + test if final else train) if r["year"] is not None})
    manifest = {
        "format": "cyberslm-cwe-classifier/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "cyberslm train classifier "
        + " ".join(
            sys.argv[3:] if sys.argv[1:3] == ["train", "classifier"] else map(str, [*inputs, "-o", out])
        ),
        "inputs": [{"path": str(p), "sha256": sha256(p)} for p in inputs],
        "excluded_benchmarks": [{"path": str(p), "sha256": sha256(p)} for p in exclude],
        "excluded_rows": excluded,
        "trained_on_years": years,
        "split": split_stats,
        "held_out_metrics": metrics,
        "held_out_note": (
            "metrics of a model trained without the test year"
            + ("; the saved model was then retrained on all years" if final else "")
        ),
        "label_count": len(clf.labels),
        "training": info,
        "rare_labels": f"CWE labels with < {min_support} training rows are dropped from training, never predicted",
        "seconds": round(time.time() - started, 1),
    }
    if any(y == 2021 for y in years) and not exclude:
        manifest["contamination_note"] = (
            "trained on NVD 2021 CVEs: CTI-RCM-2021 scores of this model are not clean; "
            "rebuild with --exclude cti-rcm-2021.tsv for a clean one"
        )
    clf.save(out, manifest)
    size = sum(p.stat().st_size for p in Path(out).iterdir())
    console.print(
        f"wrote {out} ({size / 1e6:.1f} MB, {len(clf.labels)} labels): top-1 {metrics['top1']}, "
        f"top-3 {metrics['top3']}, macro-F1 {metrics['macro_f1']}, ECE {metrics['ece']}"
    )
