"""read_cves on every official format, each plain / .gz / .zip, and on broken files."""

from __future__ import annotations

import gzip
import json
import zipfile

import pytest
from cve_builders import (
    cve5_record,
    cvss_metric,
    nvd11_feed,
    nvd11_item,
    nvd20_item,
    nvd20_response,
    write_json,
)

from cyberslm.data.cve import CweLabel
from cyberslm.data.reader import read_cves
from cyberslm.errors import BadRecord, CyberslmError

V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V30 = "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"
COMPRESSIONS = ["plain", "gz", "zip"]


def nvd11_sample():
    return nvd11_feed([
        nvd11_item("CVE-2022-0001", "Use after free in the widget parser.", ["CWE-416"], V31),
        nvd11_item("CVE-2022-0002", "Something happens somewhere.", ["NVD-CWE-noinfo"]),
        nvd11_item("CVE-2022-0003", "** REJECT ** DO NOT USE THIS CANDIDATE NUMBER.", []),
        nvd11_item("CVE-2022-0004", "SQL injection in login.php.", ["NVD-CWE-Other", "CWE-89"]),
    ])


def nvd20_sample():
    nvd = "nvd@nist.gov"
    cna = "psirt@example.com"
    return nvd20_response([
        nvd20_item(
            "CVE-2024-1000",
            [("es", "Desbordamiento de búfer en el analizador."), ("en", "Buffer overflow in the parser.")],
            [("Secondary", cna, ["CWE-120"]), ("Primary", nvd, ["CWE-787"])],
            {"cvssMetricV31": [cvss_metric(V31.replace("C:H", "C:L"), "Secondary", cna), cvss_metric(V31, "Primary", nvd)]},
        ),
        nvd20_item("CVE-2024-1001", [("en", "Rejected reason: duplicate.")], status="Rejected"),
        nvd20_item(
            "CVE-2024-1002", [("en", "Info leak."), ("es", "Fuga.")], [("Primary", nvd, ["NVD-CWE-noinfo"])],
            {"cvssMetricV30": [cvss_metric(V30, "Primary", nvd)]},
        ),
    ])


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_nvd11_feed(tmp_path, compression):
    path = write_json(tmp_path / "nvdcve-1.1-2022.json", nvd11_sample(), compression)
    records = list(read_cves(path))
    assert [r.id for r in records] == ["CVE-2022-0001", "CVE-2022-0002", "CVE-2022-0004"]  # REJECT skipped
    first, noinfo, sqli = records
    assert first.description == "Use after free in the widget parser."
    assert first.cwes == [CweLabel("CWE-416")] and first.cvss_v3 == V31
    assert first.published == "2022-01-01T10:15Z" and first.source_file.startswith(str(path))
    # Placeholders are kept as labels, never mapped or dropped, and never count as real CWEs.
    assert [c.id for c in noinfo.cwes] == ["NVD-CWE-noinfo"] and noinfo.cwes[0].is_placeholder
    assert noinfo.real_cwes == [] and noinfo.cvss_v3 is None
    assert [c.id for c in sqli.cwes] == ["NVD-CWE-Other", "CWE-89"] and sqli.real_cwes == ["CWE-89"]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_nvd20_response(tmp_path, compression):
    path = write_json(tmp_path / "nvd-api.json", nvd20_sample(), compression)
    records = list(read_cves(path))
    assert [r.id for r in records] == ["CVE-2024-1000", "CVE-2024-1002"]  # Rejected skipped
    overflow, leak = records
    assert overflow.description == "Buffer overflow in the parser."  # English, not the es entry listed first
    assert overflow.cwes[0] == CweLabel("CWE-787", "Primary", "nvd@nist.gov")
    assert overflow.cwes[1] == CweLabel("CWE-120", "Secondary", "psirt@example.com")
    assert overflow.real_cwes == ["CWE-787", "CWE-120"]
    assert overflow.cvss_v3 == V31  # NVD's Primary metric, not the CNA's Secondary one
    assert overflow.published == "2024-01-02T03:04:05.678"
    assert leak.cvss_v3 == V30 and leak.real_cwes == [] and leak.cwes[0].id == "NVD-CWE-noinfo"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_cve5_single_record(tmp_path, compression):
    record = cve5_record("CVE-2024-0001", [("de", "Ein Fehler."), ("en-US", "A flaw in X.")], ["CWE-79"], V31,
                         adp_cwes=["CWE-80"])
    path = write_json(tmp_path / "CVE-2024-0001.json", record, compression)
    (rec,) = read_cves(path)
    assert rec.id == "CVE-2024-0001" and rec.description == "A flaw in X."
    assert rec.real_cwes == ["CWE-79", "CWE-80"] and rec.cwes[1].source == "CISA-ADP"
    assert rec.cvss_v3 == V31 and rec.published == "2024-02-03T04:05:06.000Z"


def test_format_comes_from_content_not_name(tmp_path):
    feed = tmp_path / "misleading.zip"  # gzip data under a .zip name, holding an NVD 1.1 feed
    feed.write_bytes(gzip.compress(json.dumps(nvd11_sample()).encode()))
    assert len(list(read_cves(feed))) == 3
    api = tmp_path / "api.dat"
    api.write_text(json.dumps(nvd20_sample()))
    assert len(list(read_cves(api))) == 2


def test_cve5_folder_skips_rejected_and_non_records(tmp_path):
    folder = tmp_path / "cvelistV5" / "cves"
    (folder / "2024" / "0xxx").mkdir(parents=True)
    (folder / "2023" / "1xxx").mkdir(parents=True)
    write_json(folder / "2024" / "0xxx" / "CVE-2024-0002.json", cve5_record("CVE-2024-0002", [("en", "B.")], ["CWE-22"]))
    write_json(folder / "2023" / "1xxx" / "CVE-2023-1001.json", cve5_record("CVE-2023-1001", [("en", "A.")]), "gz")
    write_json(folder / "2024" / "0xxx" / "CVE-2024-0003.json", cve5_record("CVE-2024-0003", [], state="REJECTED"))
    (folder / "delta.json").write_text(json.dumps({"fetchTime": "x", "new": []}))  # cvelistV5 bookkeeping
    (folder.parent / "README.md").write_text("# not a record")
    records = list(read_cves(folder.parent))
    assert [r.id for r in records] == ["CVE-2023-1001", "CVE-2024-0002"]
    assert records[1].real_cwes == ["CWE-22"]


def test_cve5_zip_of_many_records_and_nested_release_zip(tmp_path):
    inner = tmp_path / "cves.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(5):
            cve_id = f"CVE-2024-{1000 + n}"
            zf.writestr(f"cves/2024/1xxx/{cve_id}.json", json.dumps(cve5_record(cve_id, [("en", f"Flaw {n}.")], ["CWE-20"])))
        zf.writestr("cves/deltaLog.json", "[]")
    assert [r.id for r in read_cves(inner)] == [f"CVE-2024-{1000 + n}" for n in range(5)]
    # The cvelistV5 release asset is a zip holding cves.zip.
    release = tmp_path / "2024-06-01_all_CVEs_at_midnight.zip.zip"
    with zipfile.ZipFile(release, "w") as zf:
        zf.write(inner, "cves.zip")
    records = list(read_cves(release))
    assert len(records) == 5 and "cves.zip!cves/2024/1xxx/CVE-2024-1000.json" in records[0].source_file


def test_nvd11_feed_zip_holding_one_member(tmp_path):
    path = write_json(tmp_path / "nvdcve-1.1-2022.json", nvd11_sample(), "zip")
    assert zipfile.ZipFile(path).namelist() == ["nvdcve-1.1-2022.json"]
    assert len(list(read_cves(path))) == 3


# --- broken input -------------------------------------------------------------------------------------


def big_nvd11(n=400):
    return nvd11_feed([nvd11_item(f"CVE-2022-{i:04d}", f"Flaw number {i} " + "x" * 200, ["CWE-79"]) for i in range(n)])


def test_truncated_gzip_names_file_and_record(tmp_path):
    data = gzip.compress(json.dumps(big_nvd11()).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadRecord) as err:
        list(read_cves(path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "truncated or corrupt" in message and "after CVE-2022-" in message


def test_truncated_gzip_skip_bad_keeps_records_already_read(tmp_path):
    data = gzip.compress(json.dumps(big_nvd11()).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    bad = []
    records = list(read_cves(path, skip_bad=True, on_bad=bad.append))
    assert 0 < len(records) < 400 and len(bad) == 1
    assert records[-1].id in str(bad[0])  # the error says where the file stopped


def test_invalid_json_mid_file(tmp_path):
    text = json.dumps(big_nvd11(50))
    cut = text.index('"CVE-2022-0020"')
    path = tmp_path / "broken.json"
    path.write_text(text[:cut] + "{oops" + text[cut:])
    with pytest.raises(BadRecord, match=r"broken\.json: record 20 \(after CVE-2022-0019\): invalid JSON"):
        list(read_cves(path))
    bad = []
    records = list(read_cves(path, skip_bad=True, on_bad=bad.append))
    assert [r.id for r in records] == [f"CVE-2022-{i:04d}" for i in range(20)] and len(bad) == 1


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"type": "bundle", "objects": []}, r"not a CVE file \(top-level keys: type, objects"),
        ([{"cve": {}}], r"not a CVE file \(a JSON array"),
    ],
)
def test_wrong_schema(tmp_path, content, expected):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    with pytest.raises(CyberslmError, match=expected) as err:
        list(read_cves(path))
    assert str(path) in str(err.value)


def test_cut_cve5_record_is_invalid_json(tmp_path):
    path = tmp_path / "CVE-2024-0001.json"
    path.write_text(json.dumps(cve5_record("CVE-2024-0001", [("en", "A flaw.")]))[:-30])
    with pytest.raises(BadRecord, match=r"CVE-2024-0001\.json: invalid JSON \("):
        list(read_cves(path))


def test_empty_file_is_invalid_json(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("")
    with pytest.raises(CyberslmError, match="empty.json: invalid JSON"):
        list(read_cves(path))


def test_missing_and_non_english_descriptions(tmp_path):
    feed = nvd11_feed([
        nvd11_item("CVE-2022-0001", "Fine.", ["CWE-79"]),
        nvd11_item("CVE-2022-0002", None, ["CWE-79"]),
        nvd11_item("CVE-2022-0003", "Solo en español.", ["CWE-79"], lang="es"),
        nvd11_item("CVE-2022-0004", "Also fine.", ["CWE-89"]),
    ])
    path = write_json(tmp_path / "feed.json", feed, "gz")
    with pytest.raises(BadRecord, match=r"feed\.json\.gz: record CVE-2022-0002: no description$"):
        list(read_cves(path))
    bad = []
    assert [r.id for r in read_cves(path, skip_bad=True, on_bad=bad.append)] == ["CVE-2022-0001", "CVE-2022-0004"]
    assert [str(e).split(": ", 1)[1] for e in bad] == [
        "record CVE-2022-0002: no description",
        "record CVE-2022-0003: no English description (only: es)",
    ]


def test_cve5_non_english_only_and_bad_structure(tmp_path):
    path = write_json(tmp_path / "CVE-2024-0009.json", cve5_record("CVE-2024-0009", [("fr", "Une faille.")]))
    with pytest.raises(BadRecord, match="record CVE-2024-0009: no English description"):
        list(read_cves(path))
    item = nvd20_item("CVE-2024-0010", [("en", "ok")])
    item["cve"]["weaknesses"] = "not a list"
    path = write_json(tmp_path / "api.json", nvd20_response([item]))
    with pytest.raises(BadRecord, match="record CVE-2024-0010: unexpected structure"):
        list(read_cves(path))


def test_skip_bad_continues_past_bad_files_in_a_folder(tmp_path):
    write_json(tmp_path / "a.json", {"not": "cve"})
    write_json(tmp_path / "b.json", nvd11_sample(), "gz")
    with pytest.raises(CyberslmError, match="a.json: not a CVE file"):
        list(read_cves(tmp_path))
    bad = []
    assert len(list(read_cves(tmp_path, skip_bad=True, on_bad=bad.append))) == 3 and len(bad) == 1


def test_missing_path(tmp_path):
    with pytest.raises(CyberslmError, match="no such file"):
        list(read_cves(tmp_path / "nope.json"))


def test_large_zip_members_are_streamed(tmp_path, monkeypatch):
    import cyberslm.data.reader as reader

    monkeypatch.setattr(reader, "_IN_MEMORY_BYTES", 0)  # every member takes the big-file path
    feed = write_json(tmp_path / "nvdcve-1.1-2022.json", nvd11_sample(), "zip")
    assert len(list(read_cves(feed))) == 3
    inner = tmp_path / "cves.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("cves/2024/0xxx/CVE-2024-0001.json", json.dumps(cve5_record("CVE-2024-0001", [("en", "A.")])))
    outer = tmp_path / "release.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "cves.zip")
    assert [r.id for r in read_cves(outer)] == ["CVE-2024-0001"]
