"""`cyberslm data sft`: build a chat-format SFT set ({"messages": [...]}, one JSON object a line) for TRL.

Four sources, in the prompt shapes of the CTI-Bench tasks they train for:
- cve_cwe: CVE description -> CWE (CTI-RCM prompt); the answer is a short justification taken only from
  the CWE catalog entry (name, definition, a typical consequence), then the CWE id alone on the last line.
- cti_mcq: multiple-choice questions from `cyberslm.data.mcq` (train split only); the letter ends the answer.
- cti_qa: the same generator's questions asked without options; the answer is the correct option's text.
- cvss: CVE description -> CVSS v3.1 base vector (CTI-VSP prompt) from NVD's own metrics.
Rows are appended as they are made (JsonlAppender) and a rerun skips ids already written.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import typer

from cyberslm.errors import CyberslmError

# The CTI-Bench RCM and VSP instructions as the official TSVs write them (triage --model uses RCM too),
# so a model trains and is asked in the format it is scored on.
RCM_PROMPT = (
    "Analyze the following CVE description and map it to the appropriate CWE. Provide a brief justification "
    "for your choice. Ensure the last line of your response contains only the CWE ID.  CVE Description: {desc}"
)
VSP_PROMPT = (
    "Analyze the following CVE description and calculate the CVSS v3.1 Base Score. Determine the values for "
    "each base metric: AV, AC, PR, UI, S, C, I, and A. Summarize each metric's value and provide the final CVSS "
    "v3.1 vector string.   Valid options for each metric are as follows: - **Attack Vector (AV)**: Network (N), "
    "Adjacent (A), Local (L), Physical (P) - **Attack Complexity (AC)**: Low (L), High (H) - **Privileges "
    "Required (PR)**: None (N), Low (L), High (H) - **User Interaction (UI)**: None (N), Required (R) - **Scope "
    "(S)**: Unchanged (U), Changed (C) - **Confidentiality (C)**: None (N), Low (L), High (H) - **Integrity "
    "(I)**: None (N), Low (L), High (H) - **Availability (A)**: None (N), Low (L), High (H)  Summarize each "
    "metric's value and provide the final CVSS v3.1 vector string. Ensure the final line of your response "
    "contains only the CVSS v3 Vector String in the following format:  Example format: "
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H  CVE Description: {desc} "
)
QA_SUFFIX = " Answer in one short sentence."
CVSS_METRICS = {
    "AV": ("Attack Vector", {"N": "Network", "A": "Adjacent", "L": "Local", "P": "Physical"}),
    "AC": ("Attack Complexity", {"L": "Low", "H": "High"}),
    "PR": ("Privileges Required", {"N": "None", "L": "Low", "H": "High"}),
    "UI": ("User Interaction", {"N": "None", "R": "Required"}),
    "S": ("Scope", {"U": "Unchanged", "C": "Changed"}),
    "C": ("Confidentiality", {"N": "None", "L": "Low", "H": "High"}),
    "I": ("Integrity", {"N": "None", "L": "Low", "H": "High"}),
    "A": ("Availability", {"N": "None", "L": "Low", "H": "High"}),
}
SOURCES = ("cve_cwe", "cti_mcq", "cti_qa", "cvss")


def _sentence(text: str, limit: int = 300) -> str:
    from cyberslm.data.mcq import first_sentence

    return first_sentence(" ".join((text or "").split()), limit)


def cwe_answer(weakness) -> str:
    """A justification built only from the CWE entry, ending with the id on its own line."""
    parts = [f"The description matches {weakness.id} ({weakness.name})."]
    if weakness.description:
        definition = _sentence(weakness.description).rstrip(".")
        parts.append(f"In {weakness.id}, {definition[:1].lower() + definition[1:]}.")
    impacts = [c for c in weakness.consequences if c.impacts]
    if impacts:
        first = impacts[0]
        parts.append(f"A typical consequence: {'; '.join(first.impacts[:2])} (scope: {', '.join(first.scopes[:3])}).")
    return " ".join(parts) + f"\n{weakness.id}"


def cvss_answer(vector: str) -> str | None:
    """Each base metric's value spelled out, then the vector alone on the last line; None if malformed."""
    fields = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    lines = []
    for key, (name, values) in CVSS_METRICS.items():
        if fields.get(key) not in values:
            return None
        lines.append(f"- {name} ({key}): {values[fields[key]]} ({fields[key]})")
    return "\n".join(lines) + "\n" + vector


def _chat(row_id: str, source: str, prompt: str, answer: str) -> dict:
    return {"id": row_id, "source": source,
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def cve_rows(feeds: list[Path], exclusions, kb, counts: dict[str, int], seed: int, skip_bad: bool) -> Iterator[dict]:
    """CVE->CWE and CVSS rows from NVD/CVE feeds: excluded ids and near-duplicates dropped, seeded sample."""
    from cyberslm.data.reader import read_cves

    cwe_pool, cvss_pool = [], []
    for feed in feeds:
        for rec in read_cves(feed, skip_bad=skip_bad):
            if not rec.description or rec.id in exclusions.ids or rec.description.startswith("** REJECT"):
                continue
            if counts.get("cve_cwe") and rec.real_cwes and kb.weakness(rec.real_cwes[0]) is not None:
                cwe_pool.append((rec.id, rec.description, rec.real_cwes[0]))
            if counts.get("cvss") and rec.cvss_v3 and rec.cvss_v3.startswith("CVSS:3.1/"):
                cvss_pool.append((rec.id, rec.description, rec.cvss_v3))
    rng = random.Random(seed)
    for pool in (cwe_pool, cvss_pool):
        rng.shuffle(pool)
    for source, pool in (("cve_cwe", cwe_pool), ("cvss", cvss_pool)):
        made = 0
        for cve_id, desc, label in pool:
            if made >= counts.get(source, 0):
                break
            if exclusions.is_near_duplicate(desc):
                continue
            if source == "cve_cwe":
                row = _chat(f"cve_cwe:{cve_id}", source, RCM_PROMPT.format(desc=desc), cwe_answer(kb.weakness(label)))
            else:
                answer = cvss_answer(label)
                if answer is None:
                    continue
                row = _chat(f"cvss:{cve_id}", source, VSP_PROMPT.format(desc=desc), answer)
            made += 1
            yield row


def mcq_rows(kb, counts: dict[str, int], seed: int, templates: list[str] | None = None) -> Iterator[dict]:
    """MCQ and short-answer rows from the train split of the knowledge-generated questions."""
    from cyberslm.data.mcq import generate_mcq, sample_items, split_mcq

    if not counts.get("cti_mcq") and not counts.get("cti_qa"):
        return
    train, _dev = split_mcq(generate_mcq(kb, seed=seed, templates=templates))
    picked = sample_items(train, counts.get("cti_mcq", 0) + counts.get("cti_qa", 0), seed=seed)
    for i, item in enumerate(picked):
        if i < counts.get("cti_mcq", 0):
            letter = item["answer"]
            answer = f"The correct option is {letter}) {item['options'][letter]}.\n{letter}"
            yield _chat(f"cti_mcq:{item['id']}", "cti_mcq", item["prompt"], answer)
        else:
            answer = item["options"][item["answer"]]
            yield _chat(f"cti_qa:{item['id']}", "cti_qa", item["question"] + QA_SUFFIX, answer.rstrip(".") + ".")


def build_sft(out: Path, counts: dict[str, int], feeds: list[Path] = (), exclude: list[Path] = (), seed: int = 42,
              skip_bad: bool = False, mcq_templates: list[str] | None = None, progress: bool = False) -> dict:
    """Write the SFT set to `out` (resuming) and a stats JSON next to it; returns the stats."""
    from rich.progress import Progress

    from cyberslm.data.decontam import load_exclusions
    from cyberslm.io import JsonlAppender
    from cyberslm.knowledge import load_knowledge

    unknown = set(counts) - set(SOURCES)
    if unknown:
        raise CyberslmError(f"unknown SFT source(s) {sorted(unknown)} (known: {', '.join(SOURCES)})")
    if (counts.get("cve_cwe") or counts.get("cvss")) and not feeds:
        raise CyberslmError("cve_cwe/cvss rows need CVE feeds: pass --feeds FILE (or set data.feeds in the recipe)")
    kb = load_knowledge()
    exclusions = load_exclusions(exclude)
    appender = JsonlAppender(out)
    done = appender.read()
    done_ids = {row.get("id") for row in done}
    have = Counter(row.get("source") for row in done)
    tokens = sum(_approx_tokens(row) for row in done)
    total = sum(counts.values())
    with appender, Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"building {out.name}", total=total, completed=sum(have.values()))
        for row in (*cve_rows(list(feeds), exclusions, kb, counts, seed, skip_bad),
                    *mcq_rows(kb, counts, seed, mcq_templates)):
            if row["id"] in done_ids or have[row["source"]] >= counts.get(row["source"], 0):
                continue
            appender.write(row)
            done_ids.add(row["id"])
            have[row["source"]] += 1
            tokens += _approx_tokens(row)
            bar.advance(task)
    stats = {"output": str(out), "rows": sum(have.values()), "per_source": {s: have.get(s, 0) for s in SOURCES},
             "requested": {s: counts.get(s, 0) for s in SOURCES}, "approx_tokens": tokens,
             "excluded_ids": len(exclusions.ids)}
    out.with_name(out.name + ".stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return stats


def _approx_tokens(row: dict) -> int:
    return sum(len(m["content"]) for m in row.get("messages", [])) // 4  # ~4 characters a token


def sft_command(
    out: Path = typer.Option(..., "-o", "--out", help="Output chat JSONL (resumed if it exists)."),
    recipe: str = typer.Option(None, "--recipe", help="Take the mix (and feeds) from this recipe's data section."),
    feeds: list[Path] = typer.Option([], "--feeds", help="NVD/CVE feed file or folder; repeatable."),
    count: list[str] = typer.Option([], "--count", help="SOURCE=N (cve_cwe, cti_mcq, cti_qa, cvss); repeatable."),
    exclude: list[Path] = typer.Option([], "--exclude", help="Benchmark TSV or CVE id list to keep out; repeatable."),
    seed: int = typer.Option(None, "--seed", help="Sampling seed (default: the recipe's data.seed or 42)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed CVE records instead of stopping."),
) -> None:
    """Build a chat-format SFT set: CVE->CWE with grounded justification, CTI MCQ/Q&A, CVSS vectors."""
    data: dict = {}
    if recipe:
        from cyberslm.train.recipe import load_recipe

        data = load_recipe(recipe).get("data") or {}
    counts = {k: int(v) for k, v in (data.get("mix") or {}).items()}
    for item in count:
        source, _, n = item.partition("=")
        if not n.strip().isdigit():
            raise CyberslmError(f"--count {item!r}: expected SOURCE=N, e.g. cve_cwe=500")
        counts[source.strip()] = int(n)
    if not counts:
        raise CyberslmError("nothing to build: pass --recipe or --count SOURCE=N")
    all_feeds = list(feeds) or [Path(f) for f in data.get("feeds") or []]
    all_exclude = list(exclude) or [Path(f) for f in data.get("exclude") or []]
    stats = build_sft(out, counts, all_feeds, all_exclude, seed if seed is not None else int(data.get("seed", 42)),
                      skip_bad=skip_bad, progress=True)
    typer.echo(json.dumps(stats, indent=2))
