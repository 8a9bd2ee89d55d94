"""Benchmark exclusions: ids from CTI-Bench TSVs and id lists, near-duplicate descriptions."""

from __future__ import annotations

import gzip
import random

import pytest
from cve_builders import UAF, write_rcm_tsv

from cyberslm.data.decontam import Exclusions, jaccard, load_exclusions, shingles
from cyberslm.errors import CyberslmError


def test_cti_bench_tsv_ids_and_descriptions(tmp_path):
    tsv = write_rcm_tsv(tmp_path / "cti-rcm.tsv", [
        ("CVE-2024-23848", UAF, "CWE-416"),
        ("CVE-2023-38738", 'A "quoted" flaw, unlike CVE-2021-44228, lets attackers in.', "CWE-20"),
    ])
    ex = load_exclusions([tsv])
    assert ex.ids == {"CVE-2024-23848", "CVE-2023-38738", "CVE-2021-44228"}  # URL column and text
    assert ex.descriptions == [UAF, 'A "quoted" flaw, unlike CVE-2021-44228, lets attackers in.']


def test_plain_id_list_gz(tmp_path):
    path = tmp_path / "ids.txt.gz"
    path.write_bytes(gzip.compress(b"cve-2020-0001\n\n# comment\nCVE-2021-12345\r\n"))
    assert load_exclusions([path]).ids == {"CVE-2020-0001", "CVE-2021-12345"}


def test_id_list_without_ids_is_an_error(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(CyberslmError, match="ids.txt: no CVE ids found"):
        load_exclusions([path])


def test_near_duplicate_of_excluded_description():
    ex = Exclusions(descriptions=[UAF])
    assert ex.is_near_duplicate(UAF)
    assert ex.is_near_duplicate(UAF.replace("6.7.1", "6.7.2").upper())  # one token changed, case ignored
    text, score = ex.nearest(UAF.replace("6.7.1", "6.7.2"))
    assert text == UAF and 0.8 <= score < 1
    assert not ex.is_near_duplicate("In the Linux kernel through 6.7.1, there is a double free in the tty layer.")
    assert not ex.is_near_duplicate("")


def test_prefix_filter_finds_exactly_what_brute_force_finds():
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(25)]
    excluded = [" ".join(rng.choices(vocab, k=rng.randint(2, 40))) for _ in range(300)]
    queries = []
    for text in rng.sample(excluded, 150):  # small edits of excluded texts, and fresh texts
        words = text.split()
        for _ in range(rng.randint(0, 3)):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        queries.append(" ".join(words))
    queries += [" ".join(rng.choices(vocab, k=rng.randint(2, 40))) for _ in range(150)]
    for threshold in (0.5, 0.8, 1.0):
        ex = Exclusions(descriptions=excluded, threshold=threshold)
        sets = [shingles(t) for t in excluded]
        expected = [any(jaccard(shingles(q), s) >= threshold for s in sets) for q in queries]
        assert [ex.is_near_duplicate(q) for q in queries] == expected
        assert 0 < sum(expected) < len(queries)
