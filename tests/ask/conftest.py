"""A tiny knowledge base built with the real `Knowledge` class from small in-memory bundles.

It holds just enough ATT&CK, CWE and CAPEC entries that every question in these tests has one
obvious answer and the MCQ generator can find three same-family distractors for each template.
"""

from __future__ import annotations

import pytest

from cyberslm.knowledge import Entry, Knowledge, Relationship
from cyberslm.knowledge.model import Consequence, MitigationNote, Weakness
from cyberslm.knowledge.store import Bundle, Source


def _t(tid, name, desc, tactics="['execution']"):
    path = tid.replace(".", "/")
    return Entry(tid, "technique", name, desc, f"https://attack.mitre.org/techniques/{path}/",
                 extra={"tactics": tactics})


def attack_bundle(extra: list[Entry] = ()) -> Bundle:
    e = [
        _t("T1059", "Command and Scripting Interpreter", "Adversaries may abuse command and script interpreters to execute commands, scripts, or binaries."),
        _t("T1059.001", "PowerShell", "Adversaries may abuse PowerShell commands and scripts for execution."),
        _t("T1059.003", "Windows Command Shell", "Adversaries may abuse the Windows command shell cmd.exe for execution."),
        _t("T1548", "Abuse Elevation Control Mechanism", "Adversaries may circumvent mechanisms designed to control elevate privileges to gain higher-level permissions.", "['privilege-escalation']"),
        _t("T1053", "Scheduled Task/Job", "Adversaries may abuse task scheduling functionality to facilitate initial or recurring execution of malicious code.", "['persistence']"),
        _t("T1566", "Phishing", "Adversaries may send phishing messages with malicious attachments or links to gain access to victim systems.", "['initial-access']"),
        Entry("M1038", "mitigation", "Execution Prevention", "Block execution of code on a system through application control and script blocking.", "https://attack.mitre.org/mitigations/M1038/"),
        Entry("M1028", "mitigation", "Operating System Configuration", "Make configuration changes related to the operating system.", "https://attack.mitre.org/mitigations/M1028/"),
        Entry("M1026", "mitigation", "Privileged Account Management", "Manage the creation, modification, use, and permissions associated to privileged accounts.", "https://attack.mitre.org/mitigations/M1026/"),
        Entry("M1018", "mitigation", "User Account Management", "Manage the creation, modification, use, and permissions associated to user accounts.", "https://attack.mitre.org/mitigations/M1018/"),
        Entry("M1017", "mitigation", "User Training", "Train users to be aware of access or manipulation attempts by an adversary.", "https://attack.mitre.org/mitigations/M1017/"),
        Entry("G0016", "group", "APT29", "APT29 is a threat group attributed to Russia's Foreign Intelligence Service.", "https://attack.mitre.org/groups/G0016/"),
        Entry("G0007", "group", "APT28", "APT28 is a threat group attributed to Russia's military intelligence.", "https://attack.mitre.org/groups/G0007/"),
        Entry("G0032", "group", "Lazarus Group", "Lazarus Group is a North Korean state-sponsored threat group.", "https://attack.mitre.org/groups/G0032/"),
        Entry("G0010", "group", "Turla", "Turla is a cyber espionage threat group.", "https://attack.mitre.org/groups/G0010/"),
        Entry("G0034", "group", "Sandworm Team", "Sandworm Team is a destructive threat group.", "https://attack.mitre.org/groups/G0034/"),
        Entry("S0154", "software", "Cobalt Strike", "Cobalt Strike is a commercial remote access tool for adversary simulation.", "https://attack.mitre.org/software/S0154/"),
        Entry("S0002", "software", "Mimikatz", "Mimikatz is a credential dumper.", "https://attack.mitre.org/software/S0002/"),
        *[Entry(f"DET000{i}", "detection", f"Detection Strategy {i}", "", f"https://attack.mitre.org/detectionstrategies/DET000{i}") for i in range(1, 5)],
        Entry("AN0001", "analytic", "Analytic 0001", "Monitor for powershell.exe launched with encoded command arguments.", ""),
        Entry("AN0002", "analytic", "Analytic 0002", "Monitor for processes that change their integrity level without a consent prompt.", ""),
        Entry("AN0003", "analytic", "Analytic 0003", "Monitor for new scheduled tasks created by unusual parent processes.", ""),
        Entry("AN0004", "analytic", "Analytic 0004", "Monitor mail gateways for attachments with macros from external senders.", ""),
        *extra,
    ]
    r = [
        Relationship("M1038", "mitigates", "T1059.001", "Use application control to block unsigned PowerShell scripts from running."),
        Relationship("M1028", "mitigates", "T1548", "Minimize applications with setuid or setgid bits set on the system."),
        Relationship("M1026", "mitigates", "T1053", "Restrict who can create scheduled tasks to administrators only."),
        Relationship("M1017", "mitigates", "T1566", "Teach users to recognize and report suspicious emails and attachments."),
        Relationship("G0016", "uses", "T1059.001", "[APT29](https://attack.mitre.org/groups/G0016) has used encoded PowerShell scripts uploaded to CozyCar installations.(Citation: F-Secure CozyDuke)"),
        Relationship("G0032", "uses", "T1566", "Lazarus Group has sent spearphishing emails with fake job offer attachments."),
        Relationship("S0154", "uses", "T1059.003", "Cobalt Strike uses a command-line interface to interact with systems."),
        Relationship("T1059.001", "subtechnique-of", "T1059", ""),
        *[Relationship(f"DET000{i}", "detects", t, "") for i, t in enumerate(["T1059.001", "T1548", "T1053", "T1566"], start=1)],
        *[Relationship(f"DET000{i}", "has-analytic", f"AN000{i}", "") for i in range(1, 5)],
    ]
    return Bundle("attack", "fixture ATT&CK", e, r)


def _w(num, name, desc, impacts, mitigation, capecs=()):
    return Weakness(id=f"CWE-{num}", kind="cwe", name=name, description=desc,
                    url=f"https://cwe.mitre.org/data/definitions/{num}.html", abstraction="Base", consequences=[Consequence(["Integrity"], impacts)],
                    mitigations=[MitigationNote(["Implementation"], mitigation)], capec_ids=list(capecs))


def cwe_bundle() -> Bundle:
    w = [
        _w(77, "Improper Neutralization of Special Elements used in a Command ('Command Injection')",
           "The product constructs all or part of a command using externally-influenced input without neutralizing special elements.",
           ["Execute Unauthorized Code or Commands"], "Use library calls rather than external processes to recreate the desired functionality.", ["CAPEC-88"]),
        _w(79, "Improper Neutralization of Input During Web Page Generation ('Cross-site Scripting')",
           "The product does not neutralize user-controllable input before it is placed in output that is used as a web page served to other users.",
           ["Read Application Data"], "Use a vetted library or framework that encodes output for the web page context.", ["CAPEC-63"]),
        _w(89, "Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')",
           "The product constructs all or part of an SQL command using externally-influenced input without neutralizing elements that modify the SQL query.",
           ["Modify Application Data"], "Use prepared statements and parameterized queries for every database access.", ["CAPEC-66"]),
        _w(120, "Buffer Copy without Checking Size of Input ('Classic Buffer Overflow')",
           "The product copies an input buffer to an output buffer without verifying that the size of the input buffer is less than the size of the output buffer.",
           ["DoS: Crash, Exit, or Restart"], "Use a language that performs its own memory management and bounds checking.", ["CAPEC-100"]),
        _w(306, "Missing Authentication for Critical Function",
           "The product does not perform any authentication for functionality that requires a provable user identity.",
           ["Gain Privileges or Assume Identity"], "Divide the software into anonymous, normal, privileged, and administrative areas.", []),
    ]
    return Bundle("cwe", "fixture CWE", w, [])


def capec_bundle() -> Bundle:
    c = [
        Entry("CAPEC-66", "capec", "SQL Injection", "An attacker crafts input strings so that the target database executes attacker-chosen SQL statements.", "https://capec.mitre.org/data/definitions/66.html"),
        Entry("CAPEC-88", "capec", "OS Command Injection", "An adversary injects operating system commands through a vulnerable application input.", "https://capec.mitre.org/data/definitions/88.html"),
        Entry("CAPEC-63", "capec", "Cross-Site Scripting (XSS)", "An adversary embeds malicious scripts in content served to web browsers.", "https://capec.mitre.org/data/definitions/63.html"),
        Entry("CAPEC-100", "capec", "Overflow Buffers", "An adversary writes more data into a buffer than it can hold to corrupt memory.", "https://capec.mitre.org/data/definitions/100.html"),
        Entry("CAPEC-112", "capec", "Brute Force", "An adversary tries every possible value of a secret until one works.", "https://capec.mitre.org/data/definitions/112.html"),
    ]
    return Bundle("capec", "fixture CAPEC", c, [])


def make_kb(version: str = "v1", extra: list[Entry] = ()) -> Knowledge:
    """A Knowledge whose version() follows `version` (the fingerprint of its sources)."""
    return Knowledge([
        Source("attack", "fixture-attack", version, lambda: attack_bundle(extra)),
        Source("cwe", "fixture-cwe", version, cwe_bundle),
        Source("capec", "fixture-capec", version, capec_bundle),
    ])


@pytest.fixture(scope="session")
def kb_factory():
    """make_kb, for tests that need knowledge of a given version (cache invalidation)."""
    return make_kb


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    return make_kb()


@pytest.fixture(scope="session")
def index(kb):
    from cyberslm.ask.retrieval import load_index

    return load_index(kb, dense=False)
