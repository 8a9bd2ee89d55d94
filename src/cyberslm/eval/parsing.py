"""Answer parsers shared by eval, triage and ask.

Every parser has two readings of a response:
- strict: the expected format alone on the final non-empty line (the CTI-Bench rule);
- lenient: the answer found anywhere in the response (the last match wins, as models conclude last).
A parser returns None when it finds no answer: eval counts that as unparseable and lists it.
"""

from __future__ import annotations

import re

_DECORATION = " \t*`'\"_.:;,()[]{}<>"  # markdown emphasis, quotes, brackets and final punctuation
_PREFIX = re.compile(
    r"^(?:final\s+)?(?:answer|cwe(?:\s+id)?|vector(?:\s+string)?|cvss(?:\s+v?3(?:\.1)?)?\s+vector(?:\s+string)?|"
    r"technique\s+ids?|ids?|threat\s+actor|actor|attribution|final)\s*(?:is)?\s*[:=]\s*",
    re.I,
)

LETTER = re.compile(r"^[A-D]$", re.I)
LETTER_ANYWHERE = re.compile(
    r"(?:answer\s*(?:is)?\s*[:\-]?\s*\**\(?([A-D])\b)|(?:^|\n)\s*\**\(?([A-D])[).:]?\**\s*(?:$|\n)|\b([A-D])\)",
    re.I,
)
CWE = re.compile(r"\bCWE[-\s_]?(\d{1,4})\b", re.I)
CVSS_VECTOR = re.compile(r"CVSS:3\.[01]/(?:[A-Za-z]{1,3}:[A-Za-z]/?)+")
BARE_VECTOR = re.compile(r"(?<![/\w])(AV:[NALP]/(?:[A-Za-z]{1,2}:[A-Za-z]/?){7})")
TECHNIQUE = re.compile(r"\bT(\d{4})(?:\.\d{3})?\b", re.I)


def final_line(text: str) -> str:
    """The last non-empty line with markdown decoration and an 'Answer:'-style label stripped."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip(_DECORATION)]
    if not lines:
        return ""
    line = lines[-1].strip(_DECORATION)
    return _PREFIX.sub("", line).strip(_DECORATION)


def extract_letter(text: str, strict: bool = True) -> str | None:
    """MCQ option letter A-D, upper-cased."""
    last = final_line(text)
    if LETTER.match(last):
        return last.upper()
    if strict:
        return None
    matches = [next(g for g in m.groups() if g) for m in LETTER_ANYWHERE.finditer(text or "")]
    return matches[-1].upper() if matches else None


def extract_cwe(text: str, strict: bool = True) -> str | None:
    """CWE id as `CWE-<n>` (no leading zeros)."""
    if strict:
        match = re.fullmatch(r"CWE[-\s_]?(\d{1,4})", final_line(text), re.I)
        return f"CWE-{int(match.group(1))}" if match else None
    matches = CWE.findall(text or "")
    return f"CWE-{int(matches[-1])}" if matches else None


def find_cwes(text: str) -> list[str]:
    """Every CWE id the text names, as `CWE-<n>`, in order, without repeats."""
    if "cwe" not in (text or "").lower():  # cheap filter: triage and the classifier call this on every text
        return []
    return list(dict.fromkeys(f"CWE-{int(n)}" for n in CWE.findall(text or "")))


def _valid_vector(vector: str) -> str | None:
    from cvss import CVSS3
    from cvss.exceptions import CVSSError

    vector = vector.rstrip("/")
    try:
        CVSS3(vector)
    except (CVSSError, ValueError, KeyError):
        return None
    return vector


def extract_cvss(text: str, strict: bool = True) -> str | None:
    """A valid CVSS v3.0/v3.1 vector string; invalid or incomplete vectors count as no answer."""
    if strict:
        last = final_line(text)
        return _valid_vector(last) if CVSS_VECTOR.fullmatch(last) else None
    for vector in reversed(CVSS_VECTOR.findall(text or "")):
        if (valid := _valid_vector(vector)) is not None:
            return valid
    for metrics in reversed(BARE_VECTOR.findall(text or "")):  # lenient: a vector without its CVSS:3.1/ prefix
        if (valid := _valid_vector("CVSS:3.1/" + metrics)) is not None:
            return valid
    return None


def extract_techniques(text: str, strict: bool = True) -> set[str] | None:
    """ATT&CK technique ids with sub-technique suffixes dropped (T1059.001 -> T1059)."""
    source = final_line(text) if strict else (text or "")
    if strict and not re.fullmatch(r"(?:T\d{4}(?:\.\d{3})?[\s,;]*)+", source, re.I):
        return None
    ids = {f"T{n}" for n in TECHNIQUE.findall(source)}
    return ids or None


def normalize_actor(name: str) -> str:
    """Lower-case actor name with decoration and a leading 'the' removed, for alias-table lookups."""
    name = re.sub(r"\s+", " ", name.strip(_DECORATION).lower())
    return re.sub(r"^the\s+", "", name).removesuffix(" group").strip()


def extract_actor(text: str, strict: bool = True, known: set[str] | None = None) -> str | None:
    """Threat actor name: the final line (strict), or the last known actor name mentioned (lenient)."""
    last = final_line(text)
    if strict or not known:
        return normalize_actor(last) if last and len(last) <= 60 else None
    lowered = (text or "").lower()
    best, best_pos = None, -1
    for name in known:
        for match in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lowered):
            if match.start() > best_pos or (match.start() == best_pos and len(name) > len(best or "")):
                best, best_pos = name, match.start()
    return best
