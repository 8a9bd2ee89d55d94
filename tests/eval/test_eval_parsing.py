"""Answer parsers: strict reads the final line only, lenient finds the answer anywhere."""

import pytest

from cyberslm.eval.parsing import (
    extract_actor,
    extract_cvss,
    extract_cwe,
    extract_letter,
    extract_techniques,
    final_line,
)


def test_final_line_strips_decoration_and_labels():
    assert final_line("reasoning\n\n**Answer: B**\n  \n") == "B"
    assert final_line("x\n`CWE-79`.") == "CWE-79"
    assert final_line("") == ""


@pytest.mark.parametrize(
    "text, strict, lenient",
    [
        ("Because of X.\nB", "B", "B"),
        ("Because of X.\nb", "B", "B"),
        ("The answer is C because it fits.\nThat is all.", None, "C"),
        ("I choose A) then reconsider: D) is right.\nDone", None, "D"),
        ("No idea.", None, None),
        ("A and B both\nAB", None, None),
    ],
)
def test_letter(text, strict, lenient):
    assert extract_letter(text, strict=True) == strict
    assert extract_letter(text, strict=False) == lenient


@pytest.mark.parametrize(
    "text, strict, lenient",
    [
        ("Use after free.\nCWE-416", "CWE-416", "CWE-416"),
        ("Final: cwe 079", "CWE-79", "CWE-79"),
        ("It is CWE-89 (SQL injection), not CWE-79.\nSee above.", None, "CWE-79"),
        ("CWE-79 is my answer", None, "CWE-79"),
        ("no weakness", None, None),
    ],
)
def test_cwe(text, strict, lenient):
    assert extract_cwe(text, strict=True) == strict
    assert extract_cwe(text, strict=False) == lenient


def test_cvss_valid_vectors_only():
    good = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert extract_cvss(f"metrics...\n{good}") == good
    assert extract_cvss(f"The vector {good} fits.\nok", strict=True) is None
    assert extract_cvss(f"The vector {good} fits.\nok", strict=False) == good
    assert extract_cvss("so AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\nok", strict=False) == good
    assert extract_cvss("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", strict=True) is None
    assert extract_cvss("CVSS:3.1/AV:N/AC:L/PR:N") is None  # incomplete: unparseable
    assert extract_cvss("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") is None  # bad value


def test_techniques_drop_subtechniques():
    assert extract_techniques("why...\nT1059.001, T1071, t1105") == {"T1059", "T1071", "T1105"}
    assert extract_techniques("uses T1059 and more\nsee above", strict=True) is None
    assert extract_techniques("uses T1059.003 and more\nsee above", strict=False) == {"T1059"}


def test_actor_strict_and_lenient():
    known = {"apt28", "fancy bear", "lazarus group"}
    text = "The TTPs match Fancy Bear operations.\nThis is my assessment based on the implant."
    assert extract_actor("reasons\nThe APT28 group", strict=True) == "apt28"
    assert extract_actor(text, strict=False, known=known) == "fancy bear"
    assert extract_actor("nothing known here", strict=False, known=known) is None
