"""The CWE classifier: training on a tiny table, safetensors round trip, the shipped default artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cyberslm.errors import CyberslmError
from cyberslm.models.cwe_classifier import DEFAULT_DIR, CweClassifier, tokenize


def test_trained_tiny_model_predicts_its_labels(tiny_model):
    clf = CweClassifier.load(tiny_model)
    assert sorted(clf.labels) == ["CWE-22", "CWE-787", "CWE-79", "CWE-89"]
    top = clf.predict_topk(["sql injection in the admin panel", "path traversal of the plugin"], k=2)
    assert [t[0][0] for t in top] == ["CWE-89", "CWE-22"]
    assert all(len(t) == 2 for t in top)


def test_artifact_is_safetensors_and_json_only(tiny_model):
    names = sorted(p.name for p in tiny_model.iterdir())
    assert names == ["config.json", "manifest.json", "vocab.json", "weights.safetensors"]
    manifest = json.loads((tiny_model / "manifest.json").read_text())
    assert manifest["label_count"] == 4
    assert len(manifest["inputs"][0]["sha256"]) == 64
    assert {"top1", "top3", "macro_f1", "ece"} <= set(manifest["held_out_metrics"])
    # weights, not training descriptions: no training text survives in the artifact
    vocab = json.loads((tiny_model / "vocab.json").read_text())
    assert vocab and max(len(term.split()) for term in vocab) <= 2


def test_save_load_round_trip_gives_same_probabilities(tiny_model, tmp_path):
    clf = CweClassifier.load(tiny_model)
    texts = ["stored xss in the comment field", "heap-based buffer overflow via a crafted request"]
    copy = CweClassifier.load(clf.save(tmp_path / "copy", clf.manifest))
    np.testing.assert_allclose(clf.predict_proba(texts), copy.predict_proba(texts), rtol=1e-5)
    assert copy.labels == clf.labels and (copy.temperature, copy.mixture) == (clf.temperature, clf.mixture)


def test_loading_refuses_pickle_files(tiny_model, tmp_path):
    clf = CweClassifier.load(tiny_model)
    folder = clf.save(tmp_path / "poisoned")
    (folder / "model.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(CyberslmError, match="pickle"):
        CweClassifier.load(folder)


def test_missing_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(CyberslmError, match="no classifier artifact"):
        CweClassifier.load(tmp_path / "nope")


@pytest.fixture(scope="module")
def default():
    return CweClassifier.load("default")


def test_default_artifact_maps_obvious_descriptions(default):
    top = default.predict_topk(
        [
            "SQL injection in login.php via the id parameter",
            "Cross-site scripting (XSS) vulnerability in search.php allows remote attackers to inject arbitrary "
            "web script or HTML via the q parameter.",
        ],
        k=3,
    )
    assert top[0][0][0] == "CWE-89"
    assert top[1][0][0] == "CWE-79"


def test_default_probabilities_are_sorted_and_sum_at_most_one(default):
    for row in default.predict_topk(["Use-after-free in the renderer allows code execution", "x"], k=5):
        probs = [p for _, p in row]
        assert probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1 + 1e-6


def test_default_artifact_is_small_and_documented():
    size = sum(p.stat().st_size for p in DEFAULT_DIR.iterdir())
    assert size < 25_000_000
    manifest = json.loads((DEFAULT_DIR / "manifest.json").read_text())
    assert manifest["label_count"] >= 50
    assert "2021" in manifest["contamination_note"]


def test_batched_vectorize_equals_one_text_at_a_time(tiny_model):
    clf = CweClassifier.load(tiny_model)
    texts = [
        "SQL injection in version 2.1.3",
        "",
        "path traversal of the plugin",
        "stored xss\nin the comment field",
    ]
    batch = clf.vectorize(texts).toarray()
    alone = np.vstack([clf.vectorize([t]).toarray() for t in texts])
    np.testing.assert_allclose(batch, alone, rtol=1e-6)
    assert batch[1].sum() == 0 and np.allclose(np.linalg.norm(batch[[0, 2, 3]], axis=1), 1)


def test_vectorize_counts_exactly_the_training_tokenizers_ngrams(default):
    """vectorize looks n-grams up by word ids; it must count what `tokenize` (used to build the vocabulary)
    yields, including bigrams of two known words that are not a feature and words outside the vocabulary."""
    texts = [
        "A stack-based buffer overflow in version 2.4.1 of qwzxv allows SQL injection via the id parameter.",
        "use after free use after free",
        "",
        "qwzxv zzzqq",
        "Cross-site scripting (XSS) in the admin panel of WordPress plugin 1.0",
    ]
    got = default.vectorize(texts)
    for i, text in enumerate(texts):
        counts = {}
        for gram in tokenize(text):
            if (j := default.vocab.get(gram)) is not None:
                counts[j] = counts.get(j, 0) + 1
        want = np.zeros(len(default.idf))
        for j, c in counts.items():
            want[j] = (1 + np.log(c)) * default.idf[j]
        norm = np.linalg.norm(want)
        np.testing.assert_allclose(got[i].toarray().ravel(), want / norm if norm else want, rtol=1e-5, atol=1e-7)
    assert got[0].nnz > 10 and got[2].nnz == 0


def test_a_text_containing_the_batch_break_token_does_not_shift_the_others(default):
    texts = ["SQL injection ZzzBreakZzz in login.php", "stored cross-site scripting in the comment field",
             "A CWE-787: Out-of-bounds Write vulnerability exists in the parser"]
    np.testing.assert_allclose(default.scores(texts), np.vstack([default.scores([t]) for t in texts]), atol=1e-5)
    assert [p[0][0] for p in default.predict_topk(texts, k=1)] == ["CWE-89", "CWE-79", "CWE-787"]


def test_a_vocabulary_ngram_of_three_words_is_a_clear_error(tiny_model):
    clf = CweClassifier.load(tiny_model)
    bad = CweClassifier({**clf.vocab, "use after free": 0}, clf.idf, clf.weights, clf.bias, clf.labels)
    with pytest.raises(CyberslmError, match="'use after free' has more than two words"):
        bad.vectorize(["use after free"])


def test_evaluate_counts_strict_hits_on_any_real_cwe():
    from cyberslm.train.classifier import evaluate

    rows = [
        {"cwe": "CWE-79", "cwes": ["CWE-79"]},
        {"cwe": "CWE-787", "cwes": ["CWE-787", "CWE-119"]},
        {"cwe": "CWE-89", "cwes": ["CWE-89"]},
    ]
    topk = [
        [("CWE-79", 0.9), ("CWE-89", 0.1)],
        [("CWE-119", 0.6), ("CWE-787", 0.4)],
        [("CWE-79", 0.5), ("CWE-89", 0.4)],
    ]
    m = evaluate(topk, rows, ["CWE-79", "CWE-89", "CWE-119", "CWE-787"])
    assert m["top1"] == round(2 / 3, 4) and m["top3"] == 1.0 and m["rows"] == 3


def test_modernise_moves_old_nvd_labels_to_the_ids_nvd_assigns_now():
    from cyberslm.train.classifier import modernise

    def row(cwe: str, text: str) -> dict:
        return {"id": "CVE-2017-0001", "description": text, "cwe": cwe, "cwes": [cwe, "CWE-20"], "year": 2017}

    rows = [
        row("CWE-119", "A heap-based buffer over-read in parse()"),
        row("CWE-119", "A use-after-free in the renderer"),
        row("CWE-119", "Stack-based buffer overflow via a long name"),
        row("CWE-119", "Improper bounds check"),  # no rule matches: keeps its label
        row("CWE-264", "Local users gain privileges via a symlink"),
        row("CWE-255", "The device has a hard-coded password"),
        row("CWE-79", "Buffer overflow wording in an XSS row is left alone"),
    ]
    out, moves = modernise(rows)
    assert [r["cwe"] for r in out] == [
        "CWE-125", "CWE-416", "CWE-787", "CWE-119", "CWE-269", "CWE-798", "CWE-79"
    ]  # fmt: skip
    assert out[0]["cwes"] == ["CWE-125", "CWE-119", "CWE-20"]  # the new id first, the old ones kept
    assert rows[0]["cwe"] == "CWE-119"  # inputs are not mutated
    assert moves["CWE-119->CWE-787"] == 1 and sum(moves.values()) == 5


def test_rows_with_discouraged_labels_weigh_less():
    from cyberslm.train.classifier import discouraged_labels, fit

    assert discouraged_labels(["CWE-20", "CWE-79", "CWE-200", "CWE-787"]) == {"CWE-20", "CWE-200"}
    # the same words, 12 rows labelled CWE-20 (Discouraged) and 8 labelled CWE-79 (Allowed)
    rows = [{"id": f"CVE-2021-{i:04d}", "description": f"crafted request to the widget handler number {i}",
             "cwe": cwe, "cwes": [cwe], "year": 2021} for i, cwe in enumerate(["CWE-20"] * 12 + ["CWE-79"] * 8)]
    text = ["crafted request to the widget handler"]
    flat, info = fit(rows, min_support=5, discouraged=1.0)
    assert flat.predict_topk(text, k=1)[0][0][0] == "CWE-20"
    weighted, info = fit(rows, min_support=5)
    assert weighted.predict_topk(text, k=1)[0][0][0] == "CWE-79"
    assert (info["discouraged_labels"], info["discouraged_weight"], info["class_balance"]) == (1, 0.25, 0.0)


def test_class_balance_moves_label_totals_towards_an_equal_share():
    from cyberslm.train.classifier import class_balance_weights

    y = np.array([0] * 30 + [1] * 10 + [2] * 5)
    weight = np.where(y == 0, 0.25, 1.0)  # label 0 Discouraged: its 30 rows total 7.5
    totals = lambda power: np.bincount(y, weights=weight * class_balance_weights(y, weight, power))  # noqa: E731
    np.testing.assert_allclose(totals(0.0), [7.5, 10, 5])
    np.testing.assert_allclose(totals(1.0), [7.5, 7.5, 7.5])  # every label weighs the mean
    balanced = totals(0.8)  # in between: a total becomes proportional to total ** 0.2
    np.testing.assert_allclose(balanced / balanced[2], (np.array([7.5, 10, 5]) / 5) ** 0.2)
    row = class_balance_weights(y, weight, 0.8)
    assert row[0] * 0.25 < row[30] * 1.0  # a Discouraged row still weighs less than its neighbours


def test_a_cwe_the_description_names_is_boosted(tiny_model, tmp_path):
    from cyberslm.eval.parsing import find_cwes

    assert find_cwes("A CWE-119:Improper Restriction ... (Cwe 787), see CWE-0119") == ["CWE-119", "CWE-787"]
    assert find_cwes("no weakness id here, CVE-2021-1234") == []
    clf = CweClassifier.load(tiny_model)
    assert clf.stated_boost == 2.0  # the CLI default, kept in config.json
    off = CweClassifier(clf.vocab, clf.idf, clf.weights, clf.bias, clf.labels, clf.temperature)
    off = CweClassifier.load(off.save(tmp_path / "off"))
    assert off.stated_boost == 0.0
    text = "A CWE-79: Improper Neutralization vulnerability exists in the widget of the admin panel"
    np.testing.assert_allclose(clf.scores([text]) - off.scores([text]), [[0, 2.0, 0, 0]], atol=1e-5)
    assert clf.predict_topk([text], k=1)[0][0][0] == "CWE-79" != off.predict_topk([text], k=1)[0][0][0]
    not_a_label = text.replace("CWE-79", "CWE-1236")
    assert clf.scores([not_a_label]).tolist() == off.scores([not_a_label]).tolist()


def test_a_cwe_named_by_its_catalog_name_is_boosted_once(tiny_model, tmp_path):
    clf = CweClassifier.load(tiny_model)
    # the synthetic CWE-787 rows often say "out-of-bounds write", CWE-787's catalog name: training trusts it
    assert clf.stated_names == {"out of bounds write": "CWE-787"}
    off = CweClassifier(clf.vocab, clf.idf, clf.weights, clf.bias, clf.labels, clf.temperature)
    texts = [
        "sql injection in the admin panel",
        "An OUT-OF-BOUNDS  Write in acme products",
        "an out-of-bounds write, CWE-787, in acme products",  # named twice: one boost
        "an out of bounds writer in acme products",  # not the name
    ]
    boost = (clf.scores(texts) - off.scores(texts))[:, clf.labels.index("CWE-787")]
    np.testing.assert_allclose(boost, [0, 2.0, 2.0, 0], atol=1e-5)
    # one text at a time scores the same as the batch (the name search runs once over all texts)
    np.testing.assert_allclose(np.vstack([clf.scores([t]) for t in texts]), clf.scores(texts), atol=1e-5)
    assert CweClassifier.load(clf.save(tmp_path / "copy")).stated_names == clf.stated_names


def test_only_names_that_come_with_their_cwe_in_training_are_trusted():
    from cyberslm.train.classifier import trusted_names

    rows = [{"description": f"A Use After Free in x{i}", "cwes": ["CWE-416"]} for i in range(5)]
    rows += [{"description": "use-after-free again", "cwes": ["CWE-787"]}]  # 5 of 6 rows: 0.83
    rows += [{"description": f"Improper Access Control in y{i}", "cwes": ["CWE-863"]} for i in range(9)]
    rows += [{"description": "Improper Access Control", "cwes": ["CWE-284"]}]  # 1 of 10 rows
    rows += [{"description": "a double free", "cwes": ["CWE-415"]}] * 4  # right, but too few rows
    labels = ["CWE-284", "CWE-415", "CWE-416", "CWE-787", "CWE-863"]
    assert trusted_names(rows, labels, 0.8) == {"use after free": "CWE-416"}
    assert trusted_names(rows, labels, 0.9) == {}
    assert trusted_names(rows, labels, 0.1) == {"improper access control": "CWE-284", "use after free": "CWE-416"}


def test_calibration_mixes_in_a_uniform_share_only_for_confident_mistakes():
    from cyberslm.train.classifier import fit_calibration

    y = np.arange(400) % 5
    right = np.zeros((400, 5))
    right[np.arange(400), y] = 5.0
    assert fit_calibration(right, y)[1] == 0.0  # never wrong: a temperature alone is best
    wrong = right.copy()
    wrong[:40] = 0
    wrong[np.arange(40), (y[:40] + 1) % 5] = 50.0  # 10% of rows confidently wrong by a wide margin
    wrong[40:] *= 10
    temperature, mixture, nll = fit_calibration(wrong, y)
    assert 0 < mixture <= 0.3
    assert nll < fit_calibration(wrong, y, mixtures=(0.0,))[2]


def test_mixture_floors_every_probability(tiny_model):
    clf = CweClassifier.load(tiny_model)
    texts, fitted = ["sql injection in the admin panel"], clf.mixture
    try:  # load() caches the instance: put its own mixture back
        clf.mixture = 0.0
        sharp = clf.predict_proba(texts)
        clf.mixture = 0.2
        mixed = clf.predict_proba(texts)
    finally:
        clf.mixture = fitted
    np.testing.assert_allclose(mixed, 0.8 * sharp + 0.2 / len(clf.labels), rtol=1e-6)
    assert mixed.min() >= 0.2 / len(clf.labels) and abs(mixed.sum() - 1) < 1e-6


def test_the_newest_year_copy_learns_how_the_newest_year_labels():
    from cyberslm.train.classifier import fit

    # NVD relabels the same words: 2019 called this CWE-78, 2021 calls it CWE-77 (fewer rows, as in NVD)
    rows = [{"id": f"CVE-{year}-{i:04d}", "description": f"command injection in the widget handler number {i}",
             "cwe": cwe, "cwes": [cwe], "year": year}
            for year, cwe, n in ((2019, "CWE-78", 30), (2021, "CWE-77", 14)) for i in range(n)]
    text = ["command injection in the widget handler"]
    plain, info = fit(rows, min_support=5, newest_copy=0.0, convention=0.0)
    assert plain.predict_topk(text, k=1)[0][0][0] == "CWE-78" and info["newest_copy"] == 0.0
    copied, info = fit(rows, min_support=5, convention=0.0)
    assert copied.predict_topk(text, k=1)[0][0][0] == "CWE-77"
    assert (info["newest_copy"], info["recency_weight"], info["features"]) == (0.5, 1.0, len(copied.vocab))
    assert copied.weights.shape == (len(copied.vocab), 2)  # folded back: the artifact's shape is unchanged


def test_older_rows_take_the_newest_years_convention_only_within_a_cwe_family():
    from cyberslm.train.classifier import fit, newest_conventions

    def rows_of(year, cwe, n, text):
        return [{"id": f"CVE-{year}-{cwe[4:]}{i:03d}", "description": f"{text} number {i}", "cwe": cwe,
                 "cwes": [cwe], "year": year} for i in range(n)]

    # 2019 said CWE-78 for command injection, 2021 says CWE-77 (its parent); a 2019 row labelled CWE-416
    # with the same words is a disagreement outside the family, so it keeps its label
    rows = (rows_of(2019, "CWE-78", 30, "command injection in the widget handler")
            + rows_of(2019, "CWE-416", 6, "command injection in the widget handler")
            + rows_of(2021, "CWE-77", 14, "command injection in the widget handler")
            + rows_of(2021, "CWE-89", 14, "sql injection in the report page"))
    relabelled, moves = newest_conventions(rows, threshold=0.5, min_support=5)
    assert moves == {"CWE-78->CWE-77": 30}
    by_id = {r["id"]: r for r in relabelled}
    assert len(by_id) == len(rows)
    assert {by_id[r["id"]]["cwe"] for r in rows if r["cwe"] == "CWE-78"} == {"CWE-77"}
    assert by_id["CVE-2019-416000"]["cwes"] == ["CWE-416"]  # unrelated: kept

    clf, info = fit(rows, min_support=5, newest_copy=0.0)  # without the copy the relabel alone does it
    assert clf.predict_topk(["command injection in the widget handler"], k=1)[0][0][0] == "CWE-77"
    assert info["convention_relabels"] == {"CWE-78->CWE-77": 30} and info["convention_threshold"] == 0.5
