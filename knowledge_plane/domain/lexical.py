"""Lexical search: French-aware tokenisation and a BM25 index held as a sparse matrix.

Text is lower-cased and folded to ASCII (accents and ligatures removed, so "référence",
"reference" and "RÉFÉRENCE" meet), split on anything that is not a letter or digit (which also
splits elisions: "l'embrayage" → "embrayage"), stripped of French and English stop words and
reduced by a light French stemmer (one inflectional or derivational suffix, then a 7-letter
prefix), which is enough to make "freins", "freinage" and "freiner", or "livrez" and "livraison",
share a stem without a stemming library.

The index is a documents × terms matrix of BM25 weights in CSC form, so a query reads only the
columns of its own terms; it is built once per loaded version, block by block, or read back from
the arrays a build saved beside the version.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

_SEPARATOR = "\x01"  # between documents in the one string a corpus is folded as
# Lower-case letters and digits are kept, capitals lowered, the separator kept, every other byte a space.
_BYTE_TABLE = bytes(
    c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122 or c == 1) else 32 for c in range(256)
)
_LIGATURES = (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae"), ("ß", "ss"))
STEM_LENGTH = 7

STOP_WORDS = frozenset("""
a ai aie aient aies ait as au aucun aucune aupres aussi autre autres aux avec avez avions avoir avons ayant
c ca car ce ceci cela celle celles celui ces cet cette ceux chaque chez ci comme comment contre d dans de depuis
des deux doit doivent donc dont du elle elles en encore entre es est et etaient etais etait etant ete etes etre
eu eux faire fait faut font h il ils j je jusqu l la le les leur leurs lui m ma mais me meme memes mes moi moins
mon n ne ni non nos notre nous on ont ou oui par parce pas peu peut peuvent peux plus pour pourquoi puis puisque
qu quand que quel quelle quelles quels qui quoi s sa sans se sera ses si soit sommes son sont sous suis sur t ta
te tes toi ton tous tout toute toutes tres tu un une vers voici voila vos votre vous y combien
the of to and in is are was were be been for on with by an or this that it as at from what how why when which who
do does can i you we my your our
""".split())


def _folded(text: str) -> bytes:
    """ASCII letters and digits separated by spaces: accents removed, ligatures spelled out.

    Whole-string C operations only (replace, normalize, encode, translate), so a corpus can be
    folded as one string in seconds.
    """
    for ligature, spelled in _LIGATURES:
        text = text.replace(ligature, spelled)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").translate(_BYTE_TABLE)


def fold(text: str) -> str:
    """Lower-case ASCII words without accents, separated by spaces."""
    return " ".join(_folded(text.replace(_SEPARATOR, " ")).decode("ascii").split())


# Longest first. Inflections and the commonest derivations, so that "livrez", "livrons", "livrée"
# and "livraison" meet, as do "freins", "freinage" and "freiner".
_SUFFIXES = tuple(sorted((
    "issements", "issement", "ements", "ement", "aisons", "aison", "ations", "ation", "ateurs", "ateur", "atrices",
    "atrice", "ages", "age", "euses", "euse", "ables", "able", "aient", "ions", "iez", "ons", "ez", "ent", "ait", "ais",
    "ees", "ee", "es", "er", "e", "s", "x",
), key=len, reverse=True))
_MIN_STEM = 4


def stem(word: str) -> str:
    """A light French stemmer: one inflectional or derivational suffix, then a fixed-length prefix."""
    if len(word) > 4 and word.endswith("aux"):
        return (word[:-3] + "al")[:STEM_LENGTH]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            word = word[: -len(suffix)]
            break
    return word[:STEM_LENGTH]


def words(text: str) -> list[str]:
    """Folded words of ``text``, stop words included (they are dropped per term, once, at indexing)."""
    return fold(text).split()


def term(word: str) -> str | None:
    """The index term of a folded word, or None for a stop word or a single character."""
    if len(word) < 2 or word in STOP_WORDS:
        return None
    return stem(word)


def tokenize(text: str) -> list[str]:
    return [t for t in (term(w) for w in words(text)) if t]


@dataclass(frozen=True)
class LexicalScores:
    bm25: np.ndarray  # float32, one per document
    coverage: np.ndarray  # float32 in [0, 1]: share of the query's IDF weight found in the document


class BM25Builder:
    """Accumulates documents block by block, so building never holds a whole corpus' tokens at once."""

    def __init__(self) -> None:
        self._marker = _SEPARATOR.encode()
        self._word_ids: dict[bytes, int] = {self._marker: 0}  # folded word → id
        self._to_term: list[int] = [-1]  # word id → term id (-1: stop word)
        self.vocabulary: dict[str, int] = {}
        self._blocks: list[sp.csr_matrix] = []
        self.size = 0

    def add(self, texts: Sequence[str]) -> None:
        if not texts:
            return
        # One folded string per block, documents separated by a marker token.
        tokens = _folded(f" {_SEPARATOR} ".join(t.replace(_SEPARATOR, " ") for t in texts)).split()
        word_ids = self._word_ids
        for word in set(tokens).difference(word_ids):
            word_ids[word] = len(word_ids)
        raw = np.fromiter(map(word_ids.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        del tokens
        # Stem each new distinct word once, not each occurrence.
        for word in list(word_ids)[len(self._to_term):]:
            t = term(word.decode("ascii"))
            self._to_term.append(-1 if t is None else self.vocabulary.setdefault(t, len(self.vocabulary)))
        is_marker = raw == 0
        docs = np.cumsum(is_marker)[~is_marker]
        terms = np.asarray(self._to_term, dtype=np.int64)[raw[~is_marker]]
        keep = terms >= 0
        block = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (docs[keep], terms[keep])),
                              shape=(len(texts), len(self.vocabulary)), dtype=np.float32)
        block.sum_duplicates()
        self._blocks.append(block)
        self.size += len(texts)

    def term_frequencies(self) -> sp.csr_matrix:
        width = len(self.vocabulary)
        blocks = [sp.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width)) for b in self._blocks]
        self._blocks = []
        if not blocks:
            return sp.csr_matrix((0, width), dtype=np.float32)
        return sp.vstack(blocks, format="csr", dtype=np.float32)


class BM25Index:
    """Okapi BM25 over a fixed list of documents (k1=1.2, b=0.75 by default)."""

    BLOCK = 5_000

    def __init__(self, texts: Sequence[str] = (), k1: float = 1.2, b: float = 0.75,
                 builder: BM25Builder | None = None):
        if builder is None:
            builder = BM25Builder()
            for start in range(0, len(texts), self.BLOCK):
                builder.add(texts[start : start + self.BLOCK])
        self.size = builder.size
        self.vocabulary = builder.vocabulary
        tf = builder.term_frequencies()
        n_terms = len(self.vocabulary)
        df = np.bincount(tf.indices, minlength=n_terms).astype(np.float64)
        self.idf = np.log1p((self.size - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.unknown_idf = float(math.log1p((self.size + 0.5) / 0.5))  # a term no document contains
        doc_len = np.asarray(tf.sum(axis=1)).ravel()
        avg = float(doc_len.mean()) if self.size and doc_len.mean() > 0 else 1.0
        norm = (k1 * (1 - b + b * doc_len / avg)).astype(np.float32)
        row_of = np.repeat(np.arange(self.size, dtype=np.int32), np.diff(tf.indptr))
        tf.data = self.idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + norm[row_of])  # in place: tf → weights
        del row_of
        self.matrix = tf.tocsc()
        self.matrix.sort_indices()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything the index is, as plain arrays (to be saved beside a version)."""
        m = self.matrix
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {"bm25_data": m.data, "bm25_indices": m.indices, "bm25_indptr": m.indptr,
                "bm25_shape": np.array(m.shape, dtype=np.int64), "bm25_idf": self.idf,
                "bm25_unknown_idf": np.array(self.unknown_idf), "bm25_terms": np.array(terms, dtype=str)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BM25Index:
        index = cls.__new__(cls)
        shape = tuple(int(x) for x in arrays["bm25_shape"])
        index.matrix = sp.csc_matrix((arrays["bm25_data"], arrays["bm25_indices"], arrays["bm25_indptr"]), shape=shape)
        index.size = shape[0]
        index.idf = np.asarray(arrays["bm25_idf"], dtype=np.float32)
        index.unknown_idf = float(arrays["bm25_unknown_idf"])
        index.vocabulary = {str(t): i for i, t in enumerate(arrays["bm25_terms"].tolist())}
        if len(index.vocabulary) != shape[1] or len(index.idf) != shape[1]:
            raise ValueError("inconsistent BM25 arrays")
        return index

    def query_terms(self, text: str) -> tuple[np.ndarray, float]:
        """(column ids of the known query terms, total IDF weight of all query terms, unknown ones included)."""
        unique = list(dict.fromkeys(tokenize(text)))
        ids = np.array([self.vocabulary[t] for t in unique if t in self.vocabulary], dtype=np.int64)
        unknown = len(unique) - len(ids)
        total = float(self.idf[ids].sum()) + unknown * self.unknown_idf
        return ids, total

    def score(self, text: str) -> LexicalScores:
        """BM25 and IDF coverage of ``text`` for every document."""
        ids, total = self.query_terms(text)
        if not len(ids) or total <= 0:
            zeros = np.zeros(self.size, dtype=np.float32)
            return LexicalScores(zeros, zeros.copy())
        columns = self.matrix[:, ids]
        bm25 = np.asarray(columns.sum(axis=1), dtype=np.float32).ravel()
        present = columns.copy()
        present.data = np.repeat(self.idf[ids], np.diff(columns.indptr))
        coverage = np.asarray(present.sum(axis=1), dtype=np.float32).ravel() / np.float32(total)
        return LexicalScores(bm25, np.minimum(coverage, 1.0))


def covered(query_shares: Mapping[str, float], passage_text: str) -> float:
    """The coverage of a passage for a question's ``TermStats.query_shares``."""
    if not query_shares:
        return 0.0
    present = set(tokenize(passage_text))
    return min(1.0, sum(share for t, share in query_shares.items() if t in present))


def lexical_text(payload: Mapping[str, Any]) -> str:
    """What keyword search reads of a chunk: its title, heading path and text."""
    heading = " ".join(payload.get("heading_path") or [])
    return f"{payload.get('title') or ''} {heading} {payload.get('text') or ''}"


def idf(documents: int, df: float) -> float:
    """BM25's IDF, the same formula as BM25Index (a term no document contains: df = 0)."""
    return math.log1p((documents - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class TermStats:
    """How many of a version's chunks contain each term: IDF and query coverage without the BM25 matrix.

    A vector store ranks with its own keyword index, but the gate's coverage needs the version's
    IDF; the build publishes these statistics with the version so the query service can compute
    exactly the coverage BM25Index.score gives on the same chunks.
    """

    documents: int
    df: Mapping[str, int]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> TermStats:
        counts: Counter[str] = Counter()
        documents = 0
        for text in texts:
            counts.update(set(tokenize(text)))
            documents += 1
        return cls(documents, dict(counts))

    def query_shares(self, query_text: str) -> dict[str, float]:
        """Each query term the version uses, with its share of the query's total IDF weight.

        Terms the version never uses weigh in the total but can match no passage (as in BM25Index).
        Computed once per question; ``covered`` then scores each passage against it.
        """
        query = list(dict.fromkeys(tokenize(query_text)))
        weights = {t: idf(self.documents, self.df.get(t, 0)) for t in query}
        total = sum(weights.values())
        return {t: weights[t] / total for t in query if self.df.get(t)} if total > 0 else {}

    def coverage(self, query_text: str, passage_text: str) -> float:
        """Share of the query's IDF weight whose terms the passage contains (BM25Index.score's coverage)."""
        return covered(self.query_shares(query_text), passage_text)

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "df": dict(self.df)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TermStats:
        documents, df = data.get("documents"), data.get("df")
        if not isinstance(documents, int) or documents < 0 or not isinstance(df, Mapping):
            raise ValueError("term statistics need a non-negative 'documents' count and a 'df' mapping")
        return cls(documents, {str(t): int(n) for t, n in df.items()})
