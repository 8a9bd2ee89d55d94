"""The fast CPU CWE classifier: TF-IDF word n-grams and a sparse linear model, numpy + scipy only.

An artifact is a folder of plain data, never pickle:
- weights.safetensors: `idf` (n_features,), the sparse weight matrix as CSR (`w_indptr`, `w_indices`,
  `w_data` float16; rows = features, columns = labels) and `bias` (n_labels,);
- vocab.json: n-gram -> feature index;  config.json: labels, temperature, mixture, preprocessing;
- manifest.json: how it was built (inputs and their sha256, command, metrics, date).

Scores are `l2norm(tfidf(text)) @ W + bias`, plus `stated_boost` for each label the text names itself
("A CWE-119: Improper Restriction ... vulnerability exists in ...": ICS vendors and some CNAs write their
own label into the description, and the record keeps it: 64 of the 66 such CVEs of 2021), by id or by a
catalog name in `stated_names` ("An Improper Check for Unusual or Exceptional Conditions vulnerability in
Juniper ..."; training keeps only names that come with their label in most training rows). Probabilities are
`(1 - mixture) * softmax(scores / temperature) + mixture / n_labels`, both fit on a validation split, so they
are calibrated rather than raw margins. The small uniform mixture keeps the model from saying 0.99 on the
new kinds of CVE where it is right 0.91 of the time (docs/bench/triage.md).
Training (sklearn, slow to import) lives in cyberslm.train.classifier; only inference is here.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from itertools import count, repeat
from pathlib import Path

import numpy as np

from cyberslm.errors import CyberslmError
from cyberslm.eval.parsing import find_cwes
from cyberslm.paths import ASSETS

DEFAULT_DIR = ASSETS / "cwe-classifier"
FORMAT = "cyberslm-cwe-classifier/1"
TOKEN = re.compile(r"[a-z0-9_]{2,}")  # like sklearn's default token pattern, on lower-cased text
_VERSION = re.compile(r"\b\d+(?:\.\d+)+[a-z0-9]*\b")  # 2.4.1, 10.0.19041: version numbers carry no weakness
_BREAK = "zzzbreakzzz"  # joins a batch (`_join`) for the features and the name search; never a feature
_NON_WORD = re.compile(r"[^a-z0-9]+")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".npy", ".npz"}


def tokenize(text: str) -> list[str]:
    """Unigrams and bigrams of the lower-cased text, version numbers folded to one token."""
    words = TOKEN.findall(_VERSION.sub(" vernum ", text.lower()))
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def phrase(text: str) -> str:
    """Lower-case words joined by single spaces: "Out-of-bounds  Read" -> "out of bounds read"."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def name_phrase(name: str) -> str:
    """A CWE name as `stated_names` keeps it: its `phrase` without the parenthesised short form or quoted
    alias ("Cross-Site Request Forgery (CSRF)" -> "cross site request forgery")."""
    return phrase(re.sub(r"\(.*?\)", " ", name))


def name_patterns(phrases) -> list[re.Pattern]:
    """Regexes that find `phrases` in lower-cased text with any non-word run between their words
    ("out-of-bounds read" matches "out of bounds read"); one per first word, since a pattern that starts
    with a literal lets `re` skip ahead fast, where one alternation over all names tries each at every offset."""
    rests: dict[str, list[str]] = {}
    for p in phrases:
        first, *rest = p.split()
        rests.setdefault(first, []).append("".join(r"[^a-z0-9]+" + re.escape(w) for w in rest))
    return [
        re.compile(f"{re.escape(first)}(?:{'|'.join(sorted(alts, key=len, reverse=True))})(?![a-z0-9])")
        for first, alts in rests.items()
    ]


def find_names(patterns: list[re.Pattern], text: str):
    """(start, phrase) for each match of `patterns` (from `name_patterns`) in lower-cased `text` that
    starts a word."""
    for rx in patterns:
        for m in rx.finditer(text):
            if not (start := m.start()) or text[start - 1] not in _WORD_CHARS:
                yield start, phrase(m.group())


class CweClassifier:
    """Maps CVE descriptions to CWE ids with calibrated probabilities. Load with `CweClassifier.load`."""

    def __init__(
        self,
        vocab: dict[str, int],
        idf: np.ndarray,
        weights,
        bias: np.ndarray,
        labels: list[str],
        temperature: float = 1.0,
        manifest: dict | None = None,
        mixture: float = 0.0,
        stated_boost: float = 0.0,
        stated_names: dict[str, str] | None = None,
    ):
        self.vocab = vocab
        self.idf = idf.astype(np.float32)
        self.weights = weights  # scipy CSR (n_features x n_labels), stored sparse
        self._tables = None  # word ids for `vectorize`, built from vocab on first use
        self._dense = None  # dense copy for scoring: sparse x dense is ~5x faster than sparse x sparse
        self.bias = bias.astype(np.float32)
        self.labels = list(labels)
        self._label_index = {c: j for j, c in enumerate(self.labels)}  # for the stated-CWE boost
        self.temperature = float(temperature)
        self.mixture = float(mixture)
        self.stated_boost = float(stated_boost)
        self.stated_names = {k: v for k, v in (stated_names or {}).items() if v in self._label_index}
        self._name_patterns = name_patterns(self.stated_names)
        self.manifest = manifest or {}

    # -- features and scores ------------------------------------------------------------------------
    def vectorize(self, texts: list[str]):
        """Sublinear TF-IDF, L2-normalized rows, as a scipy CSR matrix (len(texts) x n_features).

        All texts are tokenized as one string with a break token between them, and words become integer
        ids in one dict pass; unigram features are then an array lookup and bigram features a binary
        search over (first id, second id) keys, all in numpy, instead of building and hashing a string per
        bigram (bench/triage.py measures throughput).
        """
        return self._vectorize_joined(_join(texts), len(texts))

    def _vectorize_joined(self, joined: str, n: int):
        """`vectorize` of the `n` texts that `_join` made `joined`."""
        from scipy.sparse import csr_matrix

        words_index, unigram, bigram_keys, bigram_cols = self._word_tables()
        unknown = len(words_index)  # ids 0..unknown; unknown has no feature
        words = TOKEN.findall(_VERSION.sub(" vernum ", joined))
        wid = np.fromiter(map(words_index.get, words, repeat(unknown)), np.int64, len(words))
        doc = np.cumsum(wid == words_index[_BREAK])  # text index of each word
        key = wid[:-1] * (unknown + 1) + wid[1:]  # a bigram belongs to its first word's text
        at = np.searchsorted(bigram_keys, key)  # bigram_keys ends with a sentinel above every key
        ids = np.concatenate([unigram[wid], np.where(bigram_keys[at] == key, bigram_cols[at], -1)])
        rows = np.concatenate([doc, doc[:-1]])
        keep = ids >= 0
        x = csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (rows[keep], ids[keep])), shape=(n, len(self.idf))
        )
        x.sum_duplicates()
        x.data = (1.0 + np.log(x.data)) * self.idf[x.indices]
        row_of = np.repeat(np.arange(n), np.diff(x.indptr))
        norms = np.sqrt(np.bincount(row_of, weights=x.data**2, minlength=n)).astype(np.float32)
        x.data /= np.maximum(norms, 1e-12)[row_of]
        return x

    def _word_tables(self):
        """(word -> id, unigram column per id, sorted bigram keys id1 * (n_ids + 1) + id2 ending with a
        sentinel, their columns), built from `vocab` once, on first use.
        The break token has an id; a word outside the vocabulary gets id n_ids, which no feature uses."""
        if self._tables is None:
            grams = list(self.vocab)
            cols = np.fromiter(self.vocab.values(), np.int64, len(grams))
            flat = " ".join(grams).split(" ") if grams else []
            words_index = dict(zip(dict.fromkeys([*flat, _BREAK]), count()))
            base = len(words_index) + 1
            wid = np.fromiter(map(words_index.__getitem__, flat), np.int64, len(flat))
            spaces = np.fromiter(map(str.count, grams, repeat(" ")), np.int64, len(grams))
            if (spaces > 1).any():  # tokenize() makes unigrams and bigrams only
                bad = grams[int(np.argmax(spaces > 1))]
                raise CyberslmError(f"classifier vocabulary: n-gram {bad!r} has more than two words")
            two = spaces == 1
            first = np.cumsum(spaces + 1) - (spaces + 1)  # where each n-gram's first word is in `flat`
            unigram = np.full(base, -1, np.int64)
            unigram[wid[first[~two]]] = cols[~two]
            keys = wid[first[two]] * base + wid[first[two] + 1]
            order = keys.argsort()
            sentinel = np.array([np.iinfo(np.int64).max])
            self._tables = (words_index, unigram, np.concatenate([keys[order], sentinel]),
                            np.concatenate([cols[two][order], [-1]]))
        return self._tables

    def scores(self, texts: list[str]) -> np.ndarray:
        """Linear scores (len(texts) x n_labels), with `stated_boost` added for labels a text names itself."""
        if self._dense is None:
            self._dense = self.weights.toarray().astype(np.float32)
        joined = _join(texts)  # lower-cased once, for the features and the name search
        s = np.asarray(self._vectorize_joined(joined, len(texts)) @ self._dense, dtype=np.float32) + self.bias
        if self.stated_boost:
            for i, named in enumerate(self._named(texts, joined)):
                s[i, list(named)] += self.stated_boost
        return s

    def _named(self, texts: list[str], joined: str) -> list[set[int]]:
        """Per text, the indices of the labels it names: by id (CWE-787) or by a name in `stated_names`,
        searched once in `joined` (from `_join`); the break tokens before a match say whose it is."""
        named = [{self._label_index[c] for c in find_cwes(t) if c in self._label_index} for t in texts]
        if self.stated_names:
            breaks = np.array([m.start() for m in re.finditer(_BREAK, joined)], np.int64)
            for start, name in find_names(self._name_patterns, joined):
                named[int(np.searchsorted(breaks, start))].add(self._label_index[self.stated_names[name]])
        return named

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities over `labels` (rows sum to 1)."""
        p = softmax(self.scores(texts) / self.temperature)
        return (1 - self.mixture) * p + self.mixture / len(self.labels) if self.mixture else p

    def predict_topk(self, texts: list[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """The k most probable (CWE id, probability) per text, best first."""
        if not texts:
            return []
        proba = self.predict_proba(list(texts))
        k = max(1, min(k, len(self.labels)))
        top = np.argpartition(-proba, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(proba, top, 1).argsort(axis=1)[:, ::-1]
        top = np.take_along_axis(top, order, 1)
        return [[(self.labels[j], float(p[j])) for j in row] for row, p in zip(top, proba, strict=True)]

    # -- persistence --------------------------------------------------------------------------------
    def save(self, folder: str | Path, manifest: dict | None = None) -> Path:
        """Write the artifact (safetensors + JSON) to `folder`."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        w = self.weights.tocsr()
        save_file(
            {
                "idf": self.idf.astype(np.float32),
                "bias": self.bias.astype(np.float32),
                "w_indptr": w.indptr.astype(np.int32),
                "w_indices": w.indices.astype(np.int32),
                "w_data": w.data.astype(np.float16),
            },
            str(folder / "weights.safetensors"),
        )
        (folder / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False, separators=(",", ":")))
        config = {
            "format": FORMAT,
            "labels": self.labels,
            "temperature": self.temperature,
            "mixture": self.mixture,
            "stated_boost": self.stated_boost,
            "stated_names": self.stated_names,
            "n_features": len(self.idf),
            "preprocessing": {
                "lowercase": True,
                "version_numbers": _VERSION.pattern + " -> 'vernum'",
                "token": TOKEN.pattern,
                "ngrams": [1, 2],
                "tf": "1 + log(count)",
                "norm": "l2",
            },
        }
        (folder / "config.json").write_text(json.dumps(config, indent=1))
        if manifest is not None:
            self.manifest = manifest
        (folder / "manifest.json").write_text(json.dumps(self.manifest, indent=1))
        return folder

    @classmethod
    def load(cls, spec: str | Path = "default") -> CweClassifier:
        """The bundled default (`"default"`) or an artifact folder; refuses anything but safetensors + JSON."""
        folder = DEFAULT_DIR if str(spec) in ("default", "") else Path(spec).expanduser()
        return _load(str(folder.resolve()) if folder.exists() else str(folder))


@lru_cache(maxsize=4)
def _load(folder_str: str) -> CweClassifier:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    from scipy.sparse import csr_matrix

    folder = Path(folder_str)
    if not folder.is_dir():
        raise CyberslmError(f"{folder}: no classifier artifact (expected a folder with weights.safetensors)")
    unsafe = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in _PICKLE_SUFFIXES)
    if unsafe:
        raise CyberslmError(
            f"{folder}: refusing to load pickle-style files {unsafe}; artifacts are safetensors + JSON"
        )
    for name in ("weights.safetensors", "vocab.json", "config.json"):
        if not (folder / name).is_file():
            raise CyberslmError(f"{folder}: classifier artifact is missing {name}")
    try:
        config = json.loads((folder / "config.json").read_text())
        vocab = json.loads((folder / "vocab.json").read_text())
        t = load_file(str(folder / "weights.safetensors"))
    except (ValueError, OSError, SafetensorError) as exc:
        raise CyberslmError(f"{folder}: unreadable classifier artifact ({exc})") from exc
    if config.get("format") != FORMAT:
        raise CyberslmError(f"{folder}/config.json: format {config.get('format')!r}, expected {FORMAT!r}")
    labels = config["labels"]
    weights = csr_matrix(
        (t["w_data"].astype(np.float32), t["w_indices"], t["w_indptr"]), shape=(len(t["idf"]), len(labels))
    )
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return CweClassifier(
        vocab, t["idf"], weights, t["bias"], labels, config.get("temperature", 1.0), manifest,
        config.get("mixture", 0.0), config.get("stated_boost", 0.0), config.get("stated_names"),
    )


def _join(texts: list[str]) -> str:
    """The texts lower-cased and joined by the break token. A text that contains the token itself loses
    it, so that it cannot shift the texts after it."""
    joined = f" {_BREAK} ".join(texts).lower()
    if joined.count(_BREAK) != max(len(texts) - 1, 0):
        joined = f" {_BREAK} ".join(t.lower().replace(_BREAK, " ") for t in texts)
    return joined


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
