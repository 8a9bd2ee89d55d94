"""One streaming reader for every official CVE format, yielding `CveRecord`s.

Formats (detected from the content, never the file name):
- NVD JSON 1.1 yearly feeds (`CVE_Items`),
- NVD API 2.0 responses and NVD 2.0 yearly feeds (`vulnerabilities`),
- CVE JSON 5.x records (`cveMetadata` + `containers`), one per file, in folders or in zips as the
  cvelistV5 releases ship them (nested zips included).
Each may be plain, gzip or zip. The two list formats are streamed item by item with ijson, so memory
stays flat on a 1 GB feed. Rejected CVEs are skipped silently: they carry no description worth keeping.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import ijson

from cyberslm.data.cve import NVD_PLACEHOLDERS, CveRecord, CweLabel
from cyberslm.errors import BadRecord, CyberslmError

log = logging.getLogger(__name__)

NVD11, NVD20, CVE5 = "NVD JSON 1.1 feed", "NVD API 2.0", "CVE JSON 5 record"
_ITEMS = {NVD11: "CVE_Items.item", NVD20: "vulnerabilities.item"}
# The first top-level key that settles the format; the others (CVE_data_type, format, ...) may come first.
_DECISIVE_KEYS = {"CVE_Items": NVD11, "vulnerabilities": NVD20, "cveMetadata": CVE5, "containers": CVE5}
# Files inside a folder or zip that are read; cvelistV5 also ships delta files, which are not records.
_RECORD_SUFFIXES = (".json", ".gz", ".zip")
_NOT_RECORDS = {"delta.json", "deltalog.json"}
_IN_MEMORY_BYTES = 16 << 20  # zip members up to this size are read once instead of streamed twice
_STREAM_ERRORS = (ijson.JSONError, EOFError, OSError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError)
_CWE = re.compile(r"\s*CWE-(\d+)\b", re.IGNORECASE)

OnBad = Callable[[CyberslmError], None]
Opener = Callable[[], Any]  # () -> context manager yielding a binary stream


def read_cves(path: str | Path, skip_bad: bool = False, on_bad: OnBad | None = None) -> Iterator[CveRecord]:
    """Yield every non-rejected CVE in a file or folder (NVD 1.1, NVD API 2.0, CVE JSON 5; plain/.gz/.zip).

    A bad file or record raises a one-line `CyberslmError` naming the file and the record. With
    `skip_bad=True` it is passed to `on_bad` (default: logged as a warning) and reading goes on; a
    truncated or invalid stream ends that file after the records already yielded.
    """
    path = Path(path)
    if not path.exists():
        raise CyberslmError(f"{path}: no such file or folder")

    def report(err: CyberslmError) -> None:
        if not skip_bad:
            raise err
        (on_bad or (lambda e: log.warning("skipped: %s", e)))(err)

    files = sorted(p for p in path.rglob("*") if _is_record_file(p, path)) if path.is_dir() else [path]
    for file in files:
        yield from _read_file(file, report)


def _is_record_file(p: Path, root: Path) -> bool:
    rel = p.relative_to(root).parts
    return (
        p.is_file()
        and p.name.lower().endswith(_RECORD_SUFFIXES)
        and p.name.lower() not in _NOT_RECORDS
        and not any(part.startswith(".") for part in rel)
    )


def _read_file(path: Path, report: Callable[[CyberslmError], None]) -> Iterator[CveRecord]:
    name = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                yield from _read_zip(zf, name, report)
        else:
            yield from _read_stream(lambda: _open_path(path), name, report)
    except CyberslmError as err:
        report(err)
    except zipfile.BadZipFile as err:
        report(CyberslmError(f"{name}: corrupt zip ({err})"))


def _read_zip(zf: zipfile.ZipFile, name: str, report) -> Iterator[CveRecord]:
    for info in zf.infolist():
        base = info.filename.rsplit("/", 1)[-1].lower()
        parts = info.filename.split("/")
        if info.is_dir() or base in _NOT_RECORDS or not base.endswith(_RECORD_SUFFIXES):
            continue
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        member = f"{name}!{info.filename}"
        try:
            if info.file_size <= _IN_MEMORY_BYTES:
                data = zf.read(info)
                if data[:4] == b"PK\x03\x04":  # a zip inside the zip (cvelistV5 release assets)
                    with zipfile.ZipFile(io.BytesIO(data)) as inner:
                        yield from _read_zip(inner, member, report)
                else:
                    yield from _read_stream(lambda d=data: _open_bytes(d), member, report)
            else:
                with zf.open(info) as raw:
                    head = raw.read(4)
                if head == b"PK\x03\x04":
                    with tempfile.TemporaryFile() as tmp:
                        with zf.open(info) as raw:
                            shutil.copyfileobj(raw, tmp)
                        tmp.seek(0)
                        with zipfile.ZipFile(tmp) as inner:
                            yield from _read_zip(inner, member, report)
                else:
                    yield from _read_stream(lambda i=info: _open_member(zf, i), member, report)
        except CyberslmError as err:
            report(err)
        except zipfile.BadZipFile as err:
            report(CyberslmError(f"{member}: corrupt zip member ({err})"))


@contextmanager
def _gunzipped(raw: IO[bytes]) -> Iterator[IO[bytes]]:
    if raw.peek(2)[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=raw) as gz:
            yield gz
    else:
        yield raw


@contextmanager
def _open_path(path: Path) -> Iterator[IO[bytes]]:
    with open(path, "rb") as raw, _gunzipped(raw) as fh:
        yield fh


@contextmanager
def _open_bytes(data: bytes) -> Iterator[IO[bytes]]:
    with _gunzipped(io.BufferedReader(io.BytesIO(data))) as fh:
        yield fh


@contextmanager
def _open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
    with zf.open(info) as raw, _gunzipped(raw) as fh:
        yield fh


def _stream_error(name: str, record: str | int | None, err: Exception) -> BadRecord:
    if isinstance(err, (ijson.JSONError, json.JSONDecodeError)):
        what = f"invalid JSON ({err})"
    elif isinstance(err, UnicodeDecodeError):
        what = f"not UTF-8 ({err.reason} at byte {err.start})"
    elif isinstance(err, (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)):
        what = f"truncated or corrupt compressed data ({type(err).__name__}: {err})"
    else:
        what = f"cannot read ({err})"
    return BadRecord(name, record, " ".join(what.split()))


def _sniff(opener: Opener, name: str) -> str:
    """Read just enough of the stream to know its format."""
    keys: list[str] = []
    try:
        with opener() as fh:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "" and event == "start_array":
                    raise CyberslmError(f"{name}: not a CVE file (a JSON array, expected an NVD feed, "
                                        "NVD API 2.0 response or CVE JSON 5 record)")
                if prefix == "" and event == "map_key":
                    if value in _DECISIVE_KEYS:
                        return _DECISIVE_KEYS[value]
                    keys.append(value)
    except _STREAM_ERRORS as err:
        raise _stream_error(name, None, err) from None
    shown = ", ".join(keys[:8]) or "none"
    raise CyberslmError(f"{name}: not a CVE file (top-level keys: {shown}; expected CVE_Items, "
                        "vulnerabilities or cveMetadata)")


def _read_stream(opener: Opener, name: str, report) -> Iterator[CveRecord]:
    kind = _sniff(opener, name)
    if kind == CVE5:
        try:
            with opener() as fh:
                doc = json.load(fh)
        except (json.JSONDecodeError, *_STREAM_ERRORS) as err:
            raise _stream_error(name, None, err) from None
        record = _parse(_from_cve5, doc, name, 0, report)
        if record is not None:
            yield record
        return
    parse = _from_nvd11 if kind == NVD11 else _from_nvd20
    index, last_id = -1, None
    try:
        with opener() as fh:
            for index, item in enumerate(ijson.items(fh, _ITEMS[kind], use_float=True)):
                record = _parse(parse, item, name, index, report)
                if record is not None:
                    last_id = record.id
                    yield record
    except _STREAM_ERRORS as err:
        where = f"{index + 1}" + (f" (after {last_id})" if last_id else "")
        report(_stream_error(name, where, err))


def _parse(parse, item: Any, name: str, index: int, report) -> CveRecord | None:
    try:
        return parse(item, name)
    except BadRecord as err:
        report(err)
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        report(BadRecord(name, _guess_id(item) or index, f"unexpected structure ({type(err).__name__}: {err})"))
    return None


def _guess_id(item: Any) -> str | None:
    try:
        if "cveMetadata" in item:
            return item["cveMetadata"].get("cveId")
        cve = item["cve"]
        return cve.get("id") or cve["CVE_data_meta"]["ID"]
    except (KeyError, TypeError, AttributeError):
        return None


def _english(descriptions: list[dict] | None, name: str, cve_id: str) -> str:
    langs = []
    for d in descriptions or []:
        text = (d.get("value") or "").strip()
        lang = (d.get("lang") or "").lower()
        if not text:
            continue
        if lang in ("en", "eng") or lang.startswith("en-") or lang.startswith("en_"):
            return text
        langs.append(lang or "?")
    if not langs:
        raise BadRecord(name, cve_id, "no description")
    raise BadRecord(name, cve_id, f"no English description (only: {', '.join(sorted(set(langs)))})")


def _cwe_id(value: str | None) -> str | None:
    """CWE-79 (any case or padding) or an NVD placeholder; None for free-text problem types."""
    value = (value or "").strip()
    if value in NVD_PLACEHOLDERS:
        return value
    m = _CWE.match(value)
    return f"CWE-{m.group(1)}" if m else None


def _from_nvd11(item: dict, name: str) -> CveRecord | None:
    cve = item["cve"]
    cve_id = cve["CVE_data_meta"]["ID"]
    text = _english(cve.get("description", {}).get("description_data"), name, cve_id)
    if text.startswith("** REJECT **"):
        return None
    labels = []
    for problem in cve.get("problemtype", {}).get("problemtype_data", []):
        for d in problem.get("description", []):
            cwe = _cwe_id(d.get("value"))
            if cwe:
                labels.append(CweLabel(cwe))
    vector = (item.get("impact") or {}).get("baseMetricV3", {}).get("cvssV3", {}).get("vectorString")
    return CveRecord(cve_id, text, labels, vector, item.get("publishedDate"), name)


def _nvd_first(entry: dict) -> tuple[int, int]:
    # NVD's own (Primary, nvd@nist.gov) assessment before a CNA's.
    return (entry.get("type") != "Primary", entry.get("source") != "nvd@nist.gov")


def _from_nvd20(item: dict, name: str) -> CveRecord | None:
    cve = item["cve"]
    cve_id = cve["id"]
    if cve.get("vulnStatus") == "Rejected":
        return None
    text = _english(cve.get("descriptions"), name, cve_id)
    labels = []
    for weakness in sorted(cve.get("weaknesses") or [], key=_nvd_first):
        for d in weakness.get("description", []):
            cwe = _cwe_id(d.get("value"))
            if cwe:
                labels.append(CweLabel(cwe, weakness.get("type", ""), weakness.get("source", "")))
    metrics = cve.get("metrics") or {}
    v3 = metrics.get("cvssMetricV31", []) + metrics.get("cvssMetricV30", [])
    v3 = sorted(v3, key=_nvd_first)  # stable: v3.1 before v3.0 among equals
    vector = v3[0]["cvssData"]["vectorString"] if v3 else None
    return CveRecord(cve_id, text, labels, vector, cve.get("published"), name)


def _from_cve5(doc: dict, name: str) -> CveRecord | None:
    meta = doc["cveMetadata"]
    cve_id = meta["cveId"]
    if meta.get("state") == "REJECTED":
        return None
    containers = doc["containers"]
    cna = containers.get("cna") or {}
    text = _english(cna.get("descriptions"), name, cve_id)
    labels, vector = [], None
    for container in [cna, *(containers.get("adp") or [])]:
        source = (container.get("providerMetadata") or {}).get("shortName", "")
        for problem in container.get("problemTypes") or []:
            for d in problem.get("descriptions") or []:
                # cweId is the field; some CNAs only write "CWE-79 ..." in the text of a type CWE entry.
                cwe = _cwe_id(d.get("cweId")) or (_cwe_id(d.get("description")) if d.get("type") == "CWE" else None)
                if cwe:
                    labels.append(CweLabel(cwe, "", source))
        for metric in container.get("metrics") or []:
            for key in ("cvssV3_1", "cvssV3_0"):
                if vector is None and isinstance(metric.get(key), dict):
                    vector = metric[key].get("vectorString")
    return CveRecord(cve_id, text, labels, vector, meta.get("datePublished"), name)
