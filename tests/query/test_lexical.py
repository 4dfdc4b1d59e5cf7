"""French-aware tokenisation and BM25 (knowledge_plane.domain.lexical)."""

from __future__ import annotations

import numpy as np

from knowledge_plane.domain.lexical import BM25Index, fold, tokenize


def test_folding_removes_accents_and_ligatures():
    assert fold("Référence ŒUVRE Élément") == "reference oeuvre element"


def test_tokenize_drops_stop_words_and_splits_elisions():
    assert tokenize("L'embrayage de la voiture patine") == ["embray", "voitur", "patin"]


def test_inflections_share_a_stem():
    assert tokenize("freins")[0] == tokenize("frein")[0]
    assert tokenize("plaquettes")[0] == tokenize("plaquette")[0]
    assert tokenize("disques")[0] == tokenize("disque")[0]
    assert len(set(tokenize("livrez livrons livrée livraison livraisons"))) == 1
    assert len(set(tokenize("remboursement rembourser remboursée"))) == 1


def test_bm25_ranks_the_matching_document_first():
    index = BM25Index(
        [
            "Les plaquettes de frein usées sifflent",
            "La batterie se décharge la nuit",
            "Politique de retour des pièces",
            "Les disques de frein voilés font vibrer le volant",
        ]
    )
    scores = index.score("pourquoi mes plaquettes de frein sifflent")
    assert int(np.argmax(scores.bm25)) == 0
    assert scores.bm25[1] == 0 and scores.bm25[2] == 0


def test_coverage_is_the_share_of_idf_found():
    index = BM25Index(["batterie décharge", "retour pièce", "frein disque"])
    scores = index.score("batterie tarte")  # 'tarte' is in no document: it weighs as a rare term
    assert 0 < scores.coverage[0] < 1
    assert scores.coverage[1] == 0
    assert index.score("batterie décharge").coverage[0] == 1.0


def test_an_unknown_or_empty_query_scores_zero():
    index = BM25Index(["batterie décharge"])
    assert index.score("tarte tatin").bm25.sum() == 0
    assert index.score("le la les").coverage.sum() == 0


def test_empty_index():
    index = BM25Index([])
    assert index.score("batterie").bm25.shape == (0,)
