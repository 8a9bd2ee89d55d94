"""Loading the official TSV layout and scoring each task, under both protocols."""

import json

import pytest

from cyberslm.errors import BadRecord, CyberslmError
from cyberslm.eval.protocol import CTIBENCH_SYSTEM, get_protocol
from cyberslm.eval.scoring import ScoringContext, cvss_base_score
from cyberslm.eval.taa import ActorTable, load_actor_table, read_table
from cyberslm.eval.tasks import TASKS, get_tasks

FS, CB = get_protocol("foundation-sec"), get_protocol("ctibench")


def test_every_task_loads_its_fixture(fixtures_dir):
    counts = {name: len(task.load(fixtures_dir)) for name, task in TASKS.items()}
    assert counts == {"cti-mcq": 4, "cti-rcm": 3, "cti-rcm-2021": 3, "cti-vsp": 3, "cti-ate": 2, "cti-taa": 3}
    mcq = TASKS["cti-mcq"].load(fixtures_dir, limit=2)
    assert len(mcq) == 2 and mcq[0].prompt.startswith("You are given a multiple-choice question")
    assert TASKS["cti-taa"].load(fixtures_dir)[2].gt == "Side Copy"  # GT from the separate file


def test_protocol_messages():
    assert FS.messages("Q") == [{"role": "user", "content": "Q"}]
    assert CB.messages("Q")[0] == {"role": "system", "content": CTIBENCH_SYSTEM}
    assert (FS.temperature, FS.trials, CB.temperature) == (0.3, 5, 0.0)
    with pytest.raises(CyberslmError, match="unknown protocol"):
        get_protocol("nope")


def test_bad_files_name_file_and_record(tmp_path, fixtures_dir):
    (tmp_path / "cti-rcm.tsv").write_text("URL\tPrompt\tGT\r\nu\tp\r\n", encoding="utf-8")
    with pytest.raises(BadRecord, match=r"cti-rcm.tsv: record 2: expected 3"):
        TASKS["cti-rcm"].load(tmp_path)
    (tmp_path / "cti-vsp.tsv").write_text("URL\tDescription\r\nu\td\r\n", encoding="utf-8")
    with pytest.raises(CyberslmError, match=r"cti-vsp.tsv: missing column\(s\) Prompt, GT"):
        TASKS["cti-vsp"].load(tmp_path)
    (tmp_path / "cti-taa.tsv").write_bytes((fixtures_dir / "cti-taa.tsv").read_bytes())
    with pytest.raises(CyberslmError, match="needs its GT file"):
        TASKS["cti-taa"].load(tmp_path)
    (tmp_path / "cti-taa-gt.tsv").write_text("GT\nAPT28\n", encoding="utf-8")
    with pytest.raises(CyberslmError, match="1 GT rows but cti-taa.tsv has 3"):
        TASKS["cti-taa"].load(tmp_path)
    with pytest.raises(CyberslmError, match="no such file"):
        TASKS["cti-ate"].load(tmp_path)
    with pytest.raises(CyberslmError, match="unknown task"):
        get_tasks("cti-mcq,cti-xyz")


def _score(name, fixtures_dir, responses, protocol=FS, context=None):
    task = TASKS[name]
    items = task.load(fixtures_dir)[: len(responses)]
    return task.score(task, items, responses, protocol, context or ScoringContext())


def test_mcq_denominator_differs_by_protocol(fixtures_dir):
    responses = ["A", "why\nB", "The answer is C.\nok", "d"]  # item 3 is unparseable strictly
    fs = _score("cti-mcq", fixtures_dir, responses)
    assert fs["accuracy"] == pytest.approx(3 / 4)  # GT 'd' lower-case in the file still matches
    assert fs["lenient_accuracy"] == 1.0
    assert fs["unparseable"] == [2]
    cb = _score("cti-mcq", fixtures_dir, responses, CB)
    assert cb["accuracy"] == 1.0  # unparseable left out of the denominator


def test_rcm_catalog_and_hierarchy(fixtures_dir):
    from cyberslm.knowledge import load_knowledge

    kb = load_knowledge()
    child = kb.cwe_children("CWE-79")[0]
    responses = ["x\nCWE-79", f"x\n{child}", "x\nCWE-9998"]  # exact, wrong, unknown id
    m = _score("cti-rcm", fixtures_dir, responses, context=ScoringContext(kb=kb))
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["unknown_cwe"] == ["CWE-9998"] and m["unknown_cwe_count"] == 1
    assert m["hierarchy_accuracy"] == pytest.approx(1 / 3)  # the child of 79 is not GT of item 1 (CWE-89)
    gt89_child = kb.cwe_children("CWE-89")
    parent = kb.cwe_parents("CWE-89")[0]
    m = _score("cti-rcm", fixtures_dir, ["CWE-79", parent, "CWE-20"], context=ScoringContext(kb=kb))
    assert m["hierarchy_accuracy"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(1 / 3)
    assert gt89_child is not None


def test_vsp_mad_and_unparseable(fixtures_dir):
    gts = [it.gt for it in TASKS["cti-vsp"].load(fixtures_dir)]
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
    m = _score("cti-vsp", fixtures_dir, [vector, gts[1], "no vector here"])
    expected = (abs(9.8 - cvss_base_score(gts[0])) + 0.0) / 2
    assert m["mad"] == pytest.approx(expected)
    assert m["unparseable"] == [2]


def test_ate_precision_recall(fixtures_dir):
    m = _score("cti-ate", fixtures_dir, ["x\nT1059.001, T1105", "nothing"])  # GT T1059,T1071 / T1105,T1027
    assert m["precision"] == pytest.approx(0.5 / 2)
    assert m["recall"] == pytest.approx(0.5 / 2)
    assert m["f1"] == pytest.approx(0.5 / 2)
    assert m["unparseable"] == [1]
    cb = _score("cti-ate", fixtures_dir, ["x\nT1059.001, T1105", "nothing"], CB)
    assert cb["f1"] == pytest.approx(0.5)


def test_taa_alias_chain_and_related(fixtures_dir, tmp_path):
    table = load_actor_table(fixtures_dir / "taa-alias.json", fixtures_dir / "taa-related.json")
    assert table.judge("Fancy Bear", "APT28") == "correct"
    assert table.judge("Transparent Tribe", "Side Copy") == "plausible"
    assert table.judge("Turla", "APT28") == "wrong"
    ctx = ScoringContext(actors=table)
    m = _score("cti-taa", fixtures_dir, ["x\nSofacy", "x\nBlueNoroff", "It was SideCopy.\nBased on the decoys."], context=ctx)
    assert m["correct"] == pytest.approx(1 / 3) and m["plausible"] == pytest.approx(2 / 3)
    assert m["lenient_correct"] == pytest.approx(2 / 3)
    # chain: a -> b in one entry, b -> c in another: a and c are the same actor
    chained = ActorTable()
    chained.add({"a one": ["b two"], "b two": ["c three"]}, "alias")
    assert chained.judge("c three", "a one") == "correct"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": "not a list"}))
    with pytest.raises(CyberslmError, match="bad.json: expected a JSON object"):
        read_table(bad)


def test_taa_knowledge_table_has_attack_aliases():
    table = load_actor_table()
    assert table.judge("Fancy Bear", "APT28") == "correct"
    assert table.judge("G0007", "APT28") == "correct"
