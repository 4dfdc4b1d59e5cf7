"""Lexical search: French-aware tokenisation and a BM25 index held as a sparse matrix.

Text is lower-cased and folded to ASCII (accents and ligatures removed, so "référence",
"reference" and "RÉFÉRENCE" meet), split on anything that is not a letter or digit (which also
splits elisions: "l'embrayage" → "embrayage"), stripped of French and English stop words and
reduced by a light French stemmer (plural and final -e/-r, then a 7-letter prefix), which is
enough to make "freins", "freinage" and "freiner" share a stem without a stemming library.

The index is built once per loaded version: a documents × terms matrix of BM25 weights in CSC
form, so a query reads only the columns of its own terms.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import scipy.sparse as sp

_WORD_RE = re.compile(r"[a-z0-9]+")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "’": "'"})
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


def fold(text: str) -> str:
    """Lower-case ASCII without accents; characters with no ASCII form are dropped."""
    text = text.translate(_LIGATURES).lower()
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def stem(word: str) -> str:
    """A light French stemmer: plural, final -r/-e, 'aux' → 'al', then a fixed-length prefix."""
    if len(word) > 4 and word.endswith("aux"):
        word = word[:-3] + "al"
    if len(word) > 3 and word[-1] in "sx":
        word = word[:-1]
    if len(word) > 4 and word[-1] == "r":
        word = word[:-1]
    if len(word) > 4 and word[-1] == "e":
        word = word[:-1]
    return word[:STEM_LENGTH]


def words(text: str) -> list[str]:
    """Folded words of ``text``, stop words included (they are dropped per term, once, at indexing)."""
    return _WORD_RE.findall(fold(text))


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


class BM25Index:
    """Okapi BM25 over a fixed list of documents (k1=1.2, b=0.75 by default)."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75):
        self.size = len(texts)
        per_doc = [words(t) for t in texts]
        lengths = np.fromiter((len(w) for w in per_doc), dtype=np.int64, count=len(per_doc))
        flat = list(chain.from_iterable(per_doc))
        del per_doc
        # Stem each distinct word once, not each occurrence: a corpus has far fewer words than tokens.
        word_ids: dict[str, int] = {}
        raw = np.fromiter((word_ids.setdefault(w, len(word_ids)) for w in flat), dtype=np.int64, count=len(flat))
        del flat
        self.vocabulary: dict[str, int] = {}
        to_term = np.empty(len(word_ids), dtype=np.int64)
        for word, index in word_ids.items():
            t = term(word)
            to_term[index] = -1 if t is None else self.vocabulary.setdefault(t, len(self.vocabulary))
        terms = to_term[raw] if len(raw) else np.zeros(0, dtype=np.int64)
        docs = np.repeat(np.arange(self.size, dtype=np.int64), lengths)
        keep = terms >= 0
        n_terms = len(self.vocabulary)
        tf = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (docs[keep], terms[keep])),
                           shape=(self.size, n_terms), dtype=np.float32)
        tf.sum_duplicates()
        df = np.bincount(tf.indices, minlength=n_terms).astype(np.float64)
        self.idf = np.log1p((self.size - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.unknown_idf = float(math.log1p((self.size + 0.5) / 0.5))  # a term no document contains
        doc_len = np.asarray(tf.sum(axis=1)).ravel()
        avg = float(doc_len.mean()) if self.size and doc_len.mean() > 0 else 1.0
        norm = (k1 * (1 - b + b * doc_len / avg)).astype(np.float32)
        weights = tf.copy()
        row_of = np.repeat(np.arange(self.size), np.diff(tf.indptr))
        weights.data = self.idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + norm[row_of])
        self.matrix = weights.tocsc()
        self.matrix.sort_indices()

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
