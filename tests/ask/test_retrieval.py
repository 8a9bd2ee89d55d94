"""Retrieval: exact ids come first, lexical search finds described entries, the index cache is reused."""

from __future__ import annotations

import pytest

from cyberslm.ask import retrieval
from cyberslm.ask.retrieval import find_ids, load_index
from cyberslm.knowledge import Entry


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What does T1059.001 cover?", "T1059.001"),
        ("Explain cwe-77 briefly", "CWE-77"),
        ("Which weakness does CAPEC-66 exploit?", "CAPEC-66"),
        ("What is S0154 used for?", "S0154"),
        ("Who is G0016?", "G0016"),
    ],
)
def test_exact_id_question_finds_entry_first(index, question, expected):
    hits = index.search(question, k=5)
    assert hits[0][0].id == expected
    assert hits[0][0].kind != "relationship"
    assert hits[0][1] == 1.0


def test_find_ids_normalizes_and_keeps_order():
    assert find_ids("t1059.001 then CWE-79, capec-66 and M1038; not T12") == ["T1059.001", "CWE-79", "CAPEC-66", "M1038"]


def test_lexical_search_finds_described_entry(index):
    hits = index.search("prepared statements parameterized queries database", k=3)
    assert hits[0][0].id == "CWE-89"
    hits = index.search("spearphishing emails with fake job offers", k=3)
    assert hits[0][0].ids == ["G0032", "T1566"]  # the relationship passage carries the procedure example


def test_relationship_passages_are_cleaned(index):
    rel = next(p for p in index.passages if p.kind == "relationship" and p.ids == ["G0016", "T1059.001"])
    assert rel.text.startswith("APT29 (G0016) uses PowerShell (T1059.001).")
    assert "Citation" not in rel.text and "https://" not in rel.text
    assert rel.url == "https://attack.mitre.org/groups/G0016/"


def test_index_cache_is_reused_then_rebuilt_when_knowledge_changes(kb_factory):
    kb1 = kb_factory("cache-v1")
    retrieval._INDEXES.clear()
    first = load_index(kb1, dense=False)
    assert not first.loaded_from_cache
    retrieval._INDEXES.clear()
    second = load_index(kb1, dense=False)
    assert second.loaded_from_cache and second.path == first.path
    assert len(second.passages) == len(first.passages)
    assert second.search("setuid setgid", k=1)[0][0].id == first.search("setuid setgid", k=1)[0][0].id
    assert all(f.suffix in {".npy", ".json"} for f in second.path.iterdir())  # no pickle

    new = Entry("T1486", "technique", "Data Encrypted for Impact",
                "Adversaries may encrypt data on target systems to interrupt availability (ransomware).",
                "https://attack.mitre.org/techniques/T1486/")
    kb2 = kb_factory("cache-v2", extra=[new])
    assert kb2.version() != kb1.version()
    retrieval._INDEXES.clear()
    third = load_index(kb2, dense=False)
    assert not third.loaded_from_cache and third.path != first.path
    assert third.search("ransomware encryption", k=1)[0][0].id == "T1486"
    assert not first.path.exists()  # the stale index was removed


def test_empty_knowledge_is_a_clear_error():
    from cyberslm.errors import CyberslmError
    from cyberslm.knowledge import Knowledge

    with pytest.raises(CyberslmError, match="knowledge store is empty"):
        load_index(Knowledge([]), dense=False)


def test_dense_retrieval_fuses_with_lexical(kb):
    """One real MiniLM build over the tiny fixture: paraphrases with no shared words still match."""
    retrieval._INDEXES.clear()
    index = load_index(kb, dense=True)
    assert index.dense is not None and index.dense.shape == (len(index.passages), 384)
    assert (index.path / "dense.npy").exists()
    hits = index.search("ransom notes and mail with harmful attachments sent to staff", k=3)
    assert "T1566" in {pid for p, _ in hits for pid in p.ids}
    retrieval._INDEXES.clear()
    assert load_index(kb).dense is not None  # dense=None picks up the cached embeddings
