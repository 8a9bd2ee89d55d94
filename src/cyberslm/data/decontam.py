"""Keep benchmark CVEs out of training data: their ids, and descriptions that nearly repeat theirs.

`load_exclusions` reads CTI-Bench TSVs (ids sit in the URL column, e.g.
https://nvd.nist.gov/vuln/detail/CVE-2024-23848, and in Description/Prompt text) or plain id lists.
Near-duplicates are word 3-shingle sets with Jaccard similarity >= 0.8, found with a prefix-filtered
inverted index (Bayardo et al., "Scaling up all pairs similarity search"), so checking 100k training
descriptions against a few thousand benchmark ones takes seconds.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from cyberslm.errors import CyberslmError
from cyberslm.io import open_text

CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_WORD = re.compile(r"\w+")
SHINGLE_WORDS = 3
_MASK64 = (1 << 64) - 1


def shingles(text: str, k: int = SHINGLE_WORDS) -> frozenset[str]:
    """Lower-cased word k-grams; a text shorter than k words is one shingle."""
    words = _WORD.findall(text.lower())
    if len(words) <= k:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(map(" ".join, zip(*(words[i:] for i in range(k)), strict=False)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


class Exclusions:
    """CVE ids and descriptions that must not appear in training data.

    `.ids` is a set of upper-case CVE ids; `.is_near_duplicate(text)` is True when `text` has
    Jaccard >= `threshold` with any excluded description.
    """

    def __init__(self, ids: Iterable[str] = (), descriptions: Iterable[str] = (), threshold: float = 0.8):
        if not 0 < threshold <= 1:
            raise CyberslmError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        self.ids = {i.upper() for i in ids}
        self.threshold = threshold
        self.descriptions: list[str] = []
        self._sets: list[frozenset[str]] = []
        for text in descriptions:
            s = shingles(text)
            if s:
                self.descriptions.append(text)
                self._sets.append(s)
        # Global token order: rarest first. Any fixed order is correct; rare-first keeps postings short.
        # The key is (document frequency, then the token's 64-bit hash), packed in one int for speed.
        df = Counter(tok for s in self._sets for tok in s)
        self._rank = {tok: (n << 64) | (hash(tok) & _MASK64) for tok, n in df.items()}
        self._index: dict[str, list[int]] = defaultdict(list)
        for doc, s in enumerate(self._sets):
            for tok in self._ordered(s)[: self._prefix(len(s))]:
                self._index[tok].append(doc)

    def _ordered(self, s: Iterable[str]) -> list[str]:
        return sorted(s, key=self._rank.__getitem__)

    def _prefix(self, size: int) -> int:
        # A pair with Jaccard >= t shares >= ceil(t * size) tokens, so one of them is in this prefix.
        return size - math.ceil(self.threshold * size - 1e-9) + 1

    def nearest(self, description: str, first: bool = False) -> tuple[str, float] | None:
        """The excluded description this one nearly duplicates most and their similarity, or None.

        `first=True` returns the first match found instead of the closest (enough for a yes/no).
        """
        if not self._sets:
            return None
        query = shingles(description)
        if not query:
            return None
        lo, hi = self.threshold * len(query), len(query) / self.threshold
        seen: set[int] = set()
        best: tuple[str, float] | None = None
        # Tokens no excluded text has (df 0) come first in the global order and match nothing:
        # they use up prefix slots without being looked up.
        known = [tok for tok in query if tok in self._rank]
        probe = self._prefix(len(query)) - (len(query) - len(known))
        for tok in self._ordered(known)[: max(probe, 0)]:
            for doc in self._index.get(tok, ()):
                if doc in seen:
                    continue
                seen.add(doc)
                other = self._sets[doc]
                if not lo - 1e-9 <= len(other) <= hi + 1e-9:
                    continue
                score = jaccard(query, other)
                if score >= self.threshold and (best is None or score > best[1]):
                    best = (self.descriptions[doc], score)
                    if first:
                        return best
        return best

    def is_near_duplicate(self, description: str) -> bool:
        return self.nearest(description, first=True) is not None


def _read_one(path: Path) -> tuple[set[str], list[str]]:
    ids: set[str] = set()
    descriptions: list[str] = []
    csv.field_size_limit(2**31 - 1)  # CTI-Bench prompts are long single lines
    with open_text(path) as fh:
        header = fh.readline().rstrip("\r\n")
        if "\t" not in header:  # a plain id list, one per line (the first line is an id too)
            for line in [header, *fh]:
                ids.update(m.upper() for m in CVE_ID.findall(line))
            if not ids:
                raise CyberslmError(f"{path}: no CVE ids found (expected a CTI-Bench TSV or an id list)")
            return ids, descriptions
        columns = [c.strip().lower() for c in header.split("\t")]
        text_col = columns.index("description") if "description" in columns else None
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            for cell in row:
                ids.update(m.upper() for m in CVE_ID.findall(cell))
            if text_col is not None and text_col < len(row) and row[text_col].strip():
                descriptions.append(row[text_col].strip())
    return ids, descriptions


def load_exclusions(files: Iterable[str | Path], threshold: float = 0.8) -> Exclusions:
    """Read CVE ids (and Description columns) from CTI-Bench TSVs or plain id lists (.gz/.zip too)."""
    ids: set[str] = set()
    descriptions: list[str] = []
    for path in files:
        file_ids, file_descriptions = _read_one(Path(path))  # a TSV without CVEs (CTI-MCQ) adds nothing
        ids |= file_ids
        descriptions += file_descriptions
    return Exclusions(ids, descriptions, threshold)
