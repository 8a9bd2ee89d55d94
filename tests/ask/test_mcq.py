"""The knowledge-to-MCQ generator: deterministic, well-formed, and split disjointly by entry id."""

from __future__ import annotations

import csv

from cyberslm.data.mcq import generate_mcq, is_dev_entry, sample_items, split_key, split_mcq, write_tsv


def test_generator_is_deterministic(kb):
    a, b = generate_mcq(kb, seed=7), generate_mcq(kb, seed=7)
    assert a == b
    c = generate_mcq(kb, seed=8)
    assert [i["id"] for i in c] == [i["id"] for i in a]
    assert [i["options"] for i in c] != [i["options"] for i in a]  # the seed changes the draws


def test_items_are_well_formed(kb):
    items = generate_mcq(kb)
    templates = {i["template"] for i in items}
    assert {"technique", "mitigation", "mitigation-id", "detection", "procedure", "cwe-consequence",
            "cwe-mitigation", "cwe-description", "cwe-capec", "capec"} <= templates
    for it in items:
        options = list(it["options"].values())
        assert list(it["options"]) == ["A", "B", "C", "D"] and len(set(options)) == 4
        assert it["answer"] in "ABCD"
        assert all(kb.get(i) is not None for i in it["source_ids"]) and it["subject"] in it["source_ids"]
        assert f"**Question:** {it['question']}" in it["prompt"] and "A) " in it["prompt"]


def test_distractors_come_from_the_same_family(kb):
    items = {i["id"]: i for i in generate_mcq(kb)}
    it = items["mitigation:T1059.001+M1038"]
    assert it["options"][it["answer"]] == "Execution Prevention"
    mitigation_names = {e.name for e in kb.entries("mitigation")}
    assert set(it["options"].values()) <= mitigation_names
    tech = items["technique:T1059.001"]
    assert "PowerShell" not in tech["question"]  # the answer's name is masked in the stem
    assert "Windows Command Shell" in tech["options"].values()  # a sibling sub-technique is preferred


def test_split_is_disjoint_by_entry_id(kb):
    items = generate_mcq(kb)
    train, dev = split_mcq(items, dev_fraction=0.4)
    assert train and dev
    dev_subjects = {split_key(i["subject"]) for i in dev}
    train_entries = {split_key(s) for i in train for s in i["source_ids"]}
    assert not dev_subjects & train_entries
    assert split_key("T1548.002") == split_key("T1548") == "T1548"
    assert is_dev_entry("T1548.002", 0.4) == is_dev_entry("T1548", 0.4)
    assert split_mcq(items, dev_fraction=0.4) == (train, dev)


def test_sample_and_tsv_round_trip(kb, tmp_path):
    from cyberslm.ask.questions import read_questions

    items = sample_items(generate_mcq(kb), 12)
    assert len(items) == 12 and len({i["template"] for i in items}) >= 8
    path = write_tsv(items, tmp_path / "dev.tsv")
    with open(path, encoding="utf-8") as fh:
        header = next(csv.reader(fh, delimiter="\t"))
    assert header == ["URL", "Question", "Option A", "Option B", "Option C", "Option D", "Prompt", "GT"]
    qs = read_questions(path)
    assert [q.gt for q in qs] == [i["answer"] for i in items]
    assert [q.options for q in qs] == [i["options"] for i in items]
