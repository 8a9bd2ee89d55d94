"""The default answerer scores options against evidence; grounding and input parsing."""

from __future__ import annotations

import json
import sys

import pytest

from cyberslm.ask import answer
from cyberslm.ask.grounding import grounded_messages
from cyberslm.ask.questions import parse_question, read_questions
from cyberslm.errors import CyberslmError

MITIGATIONS = {"A": "User Training", "B": "Execution Prevention", "C": "User Account Management",
               "D": "Privileged Account Management"}


def test_options_are_scored_against_evidence(index):
    a = answer("Which mitigation involves application control that blocks unsigned PowerShell scripts?",
               MITIGATIONS, index=index)
    assert a.letter == "B" and a.answer == "B) Execution Prevention"
    assert a.confidence > 0.5
    assert a.sources[0].id == "M1038" and a.sources[0].kind == "relationship"
    d = a.to_dict()
    assert set(d) == {"question", "answer", "letter", "confidence", "model", "sources"}
    assert set(d["sources"][0]) == {"id", "name", "kind", "url", "text", "score"}


def test_answer_changes_with_the_evidence(index):
    a = answer("Which mitigation restricts who can create scheduled tasks?", MITIGATIONS, index=index)
    assert a.letter == "D"
    a = answer("Which group sent spearphishing emails with fake job offers?",
               {"A": "APT29", "B": "Turla", "C": "Lazarus Group", "D": "APT28"}, index=index)
    assert a.letter == "C"


def test_question_naming_an_id_uses_that_entry(index):
    a = answer("What does mitigation M1028 suggest?",
               {"A": "Teach users to report emails", "B": "Block unsigned scripts",
                "C": "Minimize applications with setuid or setgid bits", "D": "Restrict scheduled tasks"},
               index=index)
    assert a.letter == "C"


def test_free_form_question_returns_passages_with_links(index):
    a = answer("How do I stop SQL injection?", index=index, k=3)
    assert a.letter is None and len(a.sources) == 3
    assert a.sources[0].id in {"CWE-89", "CAPEC-66"}
    assert a.sources[0].url.startswith("https://")


def test_grounded_messages_prepend_evidence_without_mutating(index):
    prompt = ("You are given a multiple-choice question (MCQ). **Question:** Which mitigation blocks unsigned "
              "PowerShell scripts?  **Options:** A) User Training B) Execution Prevention C) User Account "
              "Management D) Privileged Account Management  **Important:** answer with one letter.")
    chat = [{"role": "system", "content": "sys"}, {"role": "user", "content": prompt}]
    out = grounded_messages(chat, k=3, index=index)
    assert chat[1]["content"] == prompt and out[0] == chat[0]
    assert out[1]["content"].endswith(prompt)
    assert "[M1038] Execution Prevention mitigates PowerShell" in out[1]["content"]
    with pytest.raises(CyberslmError, match="no user message"):
        grounded_messages([{"role": "system", "content": "x"}], index=index)


def test_mcq_text_is_parsed():
    q = parse_question("Which tactic?\nA) Execution\nB) Persistence\nc. Discovery\nD) Impact")
    assert q.text == "Which tactic?" and q.options == {"A": "Execution", "B": "Persistence", "C": "Discovery", "D": "Impact"}
    assert parse_question("What is CWE-79?").options is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("Which one?\nB) x\nD) y", "options B, D given but A, C missing"),
        ("Which one?\nA) x", "options A given but B missing"),
        ("A) x\nB) y", "options without a question"),
        ("   ", "empty question"),
    ],
)
def test_malformed_questions_get_one_line_errors(text, message):
    with pytest.raises(CyberslmError, match=message) as err:
        parse_question(text)
    assert "\n" not in str(err.value)


def test_answer_rejects_malformed_options(index):
    with pytest.raises(CyberslmError, match="options: options B, D given but A, C missing"):
        answer("Which one?", {"B": "x", "D": "y"}, index=index)
    with pytest.raises(CyberslmError, match="option letter\\(s\\) E not among"):
        answer("Which one?", {"A": "x", "B": "y", "E": "z"}, index=index)
    with pytest.raises(CyberslmError, match="option B is empty"):
        answer("Which one?", {"A": "x", "B": " "}, index=index)


def test_tsv_missing_columns_is_an_error(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("Question\tOption A\tOption B\tOption D\nq?\ta\tb\td\n", encoding="utf-8")
    with pytest.raises(CyberslmError, match=r"bad.tsv: missing column\(s\) Option C"):
        read_questions(path)


def test_tsv_and_text_files_are_read(tmp_path):
    tsv = tmp_path / "q.tsv"
    tsv.write_text("URL\tQuestion\tOption A\tOption B\tOption C\tOption D\tPrompt\tGT\n"
                   "u\tWhich?\ta\tb\tc\td\tp\tC\n", encoding="utf-8")
    assert read_questions(tsv)[0].options["C"] == "c" and read_questions(tsv)[0].gt == "C"
    txt = tmp_path / "q.txt"
    txt.write_text("What is T1059?\n\nWhich?\nA) a\nB) b\n", encoding="utf-8")
    qs = read_questions(txt)
    assert [q.options for q in qs] == [None, {"A": "a", "B": "b"}]


def _run_cli(args, monkeypatch, capsys):
    from cyberslm import cli

    monkeypatch.setattr(sys, "argv", ["cyberslm", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.app()
    return exit_.value.code, capsys.readouterr()


def test_cli_malformed_question_exits_2_with_one_line(monkeypatch, capsys):
    code, out = _run_cli(["ask", "Which?\nB) x\nD) y"], monkeypatch, capsys)
    assert code == 2
    assert out.err.strip().startswith("error: question: options B, D given but A, C missing")
    assert len(out.err.strip().splitlines()) == 1


def test_cli_json_on_bundled_knowledge(monkeypatch, capsys):
    """End to end on the bundled ATT&CK/CWE data (the default knowledge, lexical index)."""
    code, out = _run_cli(["ask", "What is T1059.001?", "--format", "json", "--no-dense"], monkeypatch, capsys)
    assert code in (0, None)
    row = json.loads(out.out)
    assert row["sources"][0]["id"] == "T1059.001" and row["letter"] is None
    assert row["sources"][0]["url"] == "https://attack.mitre.org/techniques/T1059/001/"


@pytest.mark.slow
def test_model_answer_is_grounded_and_cites(index):
    """Retrieval-augmented generation with the real SmolLM2-135M (hf backend, CPU)."""
    from cyberslm.ask import answerer

    a = answer("Which mitigation blocks unsigned PowerShell scripts?", MITIGATIONS, model="hf:smollm2", index=index, k=2,
               max_new_tokens=4)
    assert a.model == "hf:smollm2" and a.answer and a.confidence is None
    assert a.letter in {None, "A", "B", "C", "D"}
    assert a.sources[0].id == "M1038"  # the evidence the prompt carried
    assert "hf:smollm2" in answerer._BACKENDS
