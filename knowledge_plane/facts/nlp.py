"""Facts from French statements: spaCy's ``fr_core_news_md`` parse, text2num and dateparser.

The rules path reads a sentence as a linguist would rather than by surface pattern: spaCy gives the
sentences, the dependency parse, noun chunks and entities; ``text_to_num`` turns "trente jours"
into "30 jours"; ``dateparser`` reads the dates ("à compter du 1er juin 2024", "jusqu'au
31/12/2025"). In a sentence holding a quantity (a number followed by a unit of rules.yaml):

- the *predicate* is the noun the quantity measures: the subject of a copula ("Le SLA … est de
  99,7 %"), the noun the quantity complements ("un délai de rétractation de 14 jours"), or, for a
  verb with a time complement ("remboursé sous 14 jours"), "délai de <what the verb is about>";
- the *subject* is what that noun is of: a proper noun or a determined complement attached to it
  ("le SLA *de SAP S/4HANA Cloud*", "la disponibilité *de la plateforme S/4HANA*"), else the verb's
  subject, else the document's subject;
- bounds keep their value ("au plus 14 jours" is 14 days); a range ("entre 2 et 3 jours ouvrés")
  gives two facts, the predicate's minimum and maximum.

Only statements are read: a line that looks like code, and inline code, URLs and template
placeholders ({…}, {{…}}, $VAR) inside a line, never reach the parser. The model is loaded once
per process, and only when a changed document holds a quantity.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from knowledge_plane.domain.imports import hidden
from knowledge_plane.facts.config import DOCUMENT_SUBJECT, Ontology, Rules
from knowledge_plane.facts.normalize import NUMBER_RE, Quantity, fold, parse_number

MODEL = "fr_core_news_md"
BATCH_SIZE = 64

# -- statements only -------------------------------------------------------------------------
_CODE_LINE = re.compile(
    r"(?:^\s*(?:\$ |>>>|#!|def |class |import |from \S+ import|select |insert |curl |pip |apt(?:-get)? |sudo "
    r"|export |return |let |const |var )|\w\s*==?\s*\S|[{};]\s*$|\b[a-z_]+\.[a-z_]+\(|\b[a-z]+_[a-z_]+\(|->|=>|::"
    r"|\[['\"])", re.I)
_MASKS = re.compile(
    r"`[^`]*`|https?://\S+|www\.\S+|\{\{.*?\}\}|\{[^}]*\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%\([a-z_]+\)[sd]"
    r"|<[a-z_]+>|\S+@\S+\.\w+|(?<!\S)(?!\d{1,2}/\d{1,2}/\d{4})\S*[/\\]\S*[/\\]\S*")  # a path, not a date
_UNITLESS_NUMBER_WORD = re.compile(r"\b(d')?(une?|deux|trois)\b(?=\s+(?:{units})(?![a-z0-9]))")


def looks_like_code(line: str) -> bool:
    """A line of code, a command or an assignment rather than a sentence."""
    return _CODE_LINE.search(line.strip()) is not None


def statement_text(text: str) -> str:
    """The statement lines of a prose section: code-like lines dropped, code spans, URLs,
    placeholders, addresses and paths blanked out (a quantity inside them is never a fact)."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("|") or looks_like_code(stripped):
            continue
        kept.append(_MASKS.sub(" ", stripped))
    return "\n".join(kept)


# -- numbers in words ------------------------------------------------------------------------
def digits_for_words(text: str, rules: Rules) -> str:
    """"trente jours" → "30 jours", "d'un an" → "d'1 an"; other words are left as they are."""
    from text_to_num import alpha2digit

    text = re.sub(r"\bpour ?cent\b", "%", text, flags=re.I)
    converted = alpha2digit(text, "fr")
    small = {"un": "1", "une": "1", "deux": "2", "trois": "3"}
    pattern = re.compile(_UNITLESS_NUMBER_WORD.pattern.format(units=rules.unit_regex), re.I)
    return pattern.sub(lambda m: (m.group(1) or "") + small[m.group(2).lower()], converted)


# -- dates -----------------------------------------------------------------------------------
_MONTH_NAMES = ("janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|january|"
                "february|march|april|may|june|july|august|september|october|november|december")
_DATE = rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{4}}|(?:1er|\d{{1,2}}) (?:{_MONTH_NAMES}) \d{{4}})"
_FROM_CUE = re.compile(
    rf"(?:a compter du|a partir du|a compter de|a partir de|des le|depuis le|applicable (?:au|le|du|des le)|"
    rf"en vigueur (?:le|du|au|depuis le)|effectif (?:le|au|du)|from|since|\bdu) ({_DATE})")
_UNTIL_CUE = re.compile(rf"(?:jusqu'au|jusqu'a|until|au plus tard le|prend fin le|expire le|\bau) ({_DATE})")


@lru_cache(maxsize=512)
def parse_french_date(text: str) -> dt.date | None:
    """A written date ("1er juin 2024", "31/12/2025", "2024-06-01") read by dateparser."""
    import dateparser

    parsed = dateparser.parse(text.replace("1er", "1"), languages=["fr", "en"],
                              settings={"DATE_ORDER": "DMY", "REQUIRE_PARTS": ["day", "month", "year"]})
    return parsed.date() if parsed else None


def validity_in(folded_sentence: str) -> tuple[dt.date | None, dt.date | None]:
    """(valid_from, valid_until) a sentence states with a cue; a date without one says nothing."""
    start = _FROM_CUE.search(folded_sentence)
    until = _UNTIL_CUE.search(folded_sentence)
    return (parse_french_date(start.group(1)) if start else None,
            parse_french_date(until.group(1)) if until else None)


# -- the model -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def french_pipeline() -> Any:
    """spaCy's French pipeline, loaded once per process (installed as a package: no download).

    spaCy's thinc imports torch whenever it is installed, though this CNN pipeline never uses it: a
    build that embeds with ONNX Runtime would load torch (1.4 s, hundreds of MB) for nothing, so torch
    is hidden while spaCy is imported (thinc then runs without it).
    """
    with hidden("torch"):
        import spacy

    return spacy.load(MODEL)


# -- finding quantities ----------------------------------------------------------------------
_UPPER = re.compile(r"(?:au plus|au maximum|maximum|max\.?|jusqu'a|moins de|n'excede pas|ne depasse pas|"
                    r"inferieure? a|dans la limite de|plafonnee? a|pas plus de)\s*$")
_LOWER = re.compile(r"(?:au moins|au minimum|minimum|min\.?|plus de|superieure? a|des|a partir de)\s*$")
_CLOCK = re.compile(r"(?:avant|apres|vers|a|jusqu'a|des|entre|de|et)\s*$")
_NOT_A_VALUE_AFTER = re.compile(r"^\s*(?:/\s*\d|\d)")  # "24 h/24", "7 j/7"


@dataclass(frozen=True)
class Mention:
    """One quantity in a sentence: where it is, its value, and what kind of bound it states."""

    start: int  # of the number, in the sentence text
    end: int  # of the unit
    number: float
    unit: str
    written: str
    bound: str | None = None  # "min" / "max" of a range
    limit: str | None = None  # "upper" ("au plus 14 jours") / "lower" ("dès 59 €") for a single value


def mentions(sentence: str, rules: Rules) -> list[Mention]:
    """The quantities of a sentence; a range yields its two ends, marked min and max."""
    folded = fold(sentence)
    found: list[Mention] = []
    matches = list(re.finditer(rules.quantity_regex, folded))
    range_low = re.compile(rf"(?:entre|de|du)?\s*(?P<low>{NUMBER_RE})\s*(?:(?:{rules.unit_regex})\s*)?"
                           r"(?:et|a|-|–|au)\s*$")
    consumed: set[int] = set()
    for n, match in enumerate(matches):
        if n in consumed or _NOT_A_VALUE_AFTER.match(folded[match.end():]):
            continue
        number_text = sentence[match.start("number"):match.end("number")]
        try:
            number = parse_number(number_text)
        except ValueError:
            continue
        if re.search(r"[\d/.-]$", folded[:match.start()].rstrip(" ")[-1:] or "") and \
                re.search(r"\d[/.-]$", folded[:match.start()]):
            continue  # the tail of a date or version ("31/12/2025 jours" never happens; "v1.2 h" does)
        unit = match.group("unit")
        written = sentence[match.start("number"):match.end("unit")]
        if unit == "a" or unit == "h" and _CLOCK.search(folded[:match.start()]):
            continue  # "Peugeot 206 a …" is a verb; "avant 13 h" is a time of day, not a duration
        # "entre 2 et 3 jours", "de 2 jours à 3 jours", "2-3 jours"
        before = folded[max(0, match.start() - 40):match.start()]
        low = range_low.search(before)
        following = matches[n + 1] if n + 1 < len(matches) else None
        if following and re.fullmatch(r"\s*(?:a|-|–|et|au)\s*", folded[match.end():following.start()]):
            continue  # the low end of "2 jours à 3 jours": the high end reports the range
        if low and unit == "h":
            continue  # "de 9 h à 18 h": opening hours, not a duration
        if low and not re.search(r"\d\s*$", before[:low.start("low")]):
            low_number = parse_number(low.group("low").strip())
            start = max(0, match.start() - 40) + low.start("low")
            ranged = sentence[start:match.end("unit")]
            found.append(Mention(start, match.end("unit"), low_number, unit, ranged, "min"))
            found.append(Mention(start, match.end("unit"), number, unit, ranged, "max"))
            continue
        limit = "upper" if _UPPER.search(before) else "lower" if _LOWER.search(before) else None
        found.append(Mention(match.start("number"), match.end("unit"), number, unit, written, limit=limit))
    return found


# -- reading the parse -----------------------------------------------------------------------
_SUBJECT_DEPS = {"nsubj", "nsubj:pass"}
_COMPLEMENT_DEPS = {"nmod", "appos", "obl:arg", "obl:mod", "obl"}
_DEFINITE = {"le", "la", "les", "l'", "du", "des", "au", "aux", "son", "sa", "ses", "leur", "leurs", "ce", "cette"}


@dataclass(frozen=True)
class Reading:
    """What a quantity of a sentence is about, as the parse says, and how sure the reading is."""

    subject: str | None
    predicate: str  # empty: to be named from the verb and the unit
    how: str  # copula | complement | verb
    verb: str = ""  # lemma of the verb (or adjective) stating the quantity
    adjective: str = ""
    head: str = ""  # lemma of the thing's noun ("retours" → "retour")
    entity: str = ""  # spaCy's entity label of the subject, if it names one (ORG, MISC…)


def _token_at(sent: Any, char: int) -> Any:
    for token in sent:
        if token.idx <= char < token.idx + len(token.text):
            return token
    return None


def _is_quantity(token: Any, lo: int, hi: int) -> bool:
    return lo <= token.idx < hi


def _phrase(tokens: Iterable[Any]) -> str:
    ordered = sorted(tokens, key=lambda t: t.i)
    text = ""
    for n, token in enumerate(ordered):
        adjacent = n + 1 < len(ordered) and ordered[n + 1].i == token.i + 1
        text += token.text + (token.whitespace_ if adjacent else " ")
    return " ".join(text.split()).strip(" ,;:.")


def _named(token: Any) -> bool:
    return token.pos_ == "PROPN" or token.ent_type_ in {"ORG", "MISC", "PRODUCT"}


def _subtree(token: Any, lo: int, hi: int) -> list[Any]:
    return [t for t in token.subtree if not _is_quantity(t, lo, hi) and t.dep_ != "punct"]


def _split_noun(noun: Any, lo: int, hi: int) -> tuple[list[Any], list[Any]]:
    """The property phrase of a noun and the phrase of what it is of.

    "SLA de SAP S/4HANA Cloud": SAP… is named, so a subject; "délai de rétractation": a bare
    complement qualifies the noun; "disponibilité garantie de la plateforme": a determined
    complement (here of the participle) names the thing the property is of.
    """
    predicate = [noun]
    subject: list[Any] = []

    def visit(head: Any) -> None:
        for child in head.children:
            if _is_quantity(child, lo, hi) or child.dep_ in {"det", "punct", "cop", "cc", "conj"} \
                    or child.dep_.startswith("nsubj") or child.pos_ in {"PRON", "VERB"} and child.dep_ != "acl":
                continue
            case = [t for t in child.children if t.dep_ == "case"]
            if child.dep_ in {"amod", "fixed", "flat:name", "compound"} and child.pos_ in {"ADJ", "NOUN", "VERB"}:
                predicate.append(child)
            elif child.dep_ == "acl" and child.pos_ in {"VERB", "ADJ", "NOUN"}:
                predicate.append(child)  # "disponibilité garantie": the participle qualifies it
                visit(child)
            elif child.dep_ in _COMPLEMENT_DEPS:
                has_det = any(t.dep_ == "det" and t.lower_ in _DEFINITE for t in child.children) or any(
                    t.lower_ in {"du", "des", "au", "aux"} for t in case)
                if _named(child) or has_det or child.dep_ == "appos":
                    subject.extend(t for t in _subtree(child, lo, hi)
                                   if t.dep_ not in {"case", "det"} or t.head.i != child.i)
                elif child.pos_ in {"NOUN", "ADJ"}:
                    predicate.extend([*case, child])  # "délai de rétractation"
                    visit(child)

    visit(noun)
    return predicate, _extend_name(subject)


_NAME = re.compile(r"^[A-Z0-9][\w/.+-]*[A-Z][\w/.+-]*$")  # "S/4HANA", "M365", "AWS" (tagged anything)


def _version_of_name(doc: Any, i: int) -> bool:
    """"Microsoft 365", "Windows 11": a number closing a name, right before its verb."""
    return doc[i].like_num and i + 1 < len(doc) and doc[i + 1].pos_ in {"AUX", "VERB"}


def _extend_name(subject: list[Any]) -> list[Any]:
    """"plateforme" + "S/4HANA" when the parser cut a name from its noun: adjacent proper nouns join."""
    if not subject:
        return subject
    last = max(subject, key=lambda t: t.i)
    doc = last.doc
    out = list(subject)
    i = last.i + 1
    while i < len(doc) and doc[i].dep_ != "punct" and (doc[i].pos_ in {"PROPN", "X"} or _NAME.match(doc[i].text)
                                                       or _version_of_name(doc, i)):
        out.append(doc[i])
        i += 1
    return out


def _noun_phrase(token: Any, lo: int, hi: int) -> str:
    """The words of a noun's phrase, without determiners, pronouns or the quantity."""
    words = [t for t in _subtree(token, lo, hi) if t.pos_ not in {"DET", "PRON"} and t.dep_ not in {"det", "cc"}
             and fold(t.lower_) not in {"tout", "toute", "tous", "toutes", "chaque"}
             and not (t.dep_ == "case" and t.head.i == token.i)]
    return _phrase(_extend_name(words))


def _thing(noun: Any, lo: int, hi: int, verb: Any = None) -> Reading:
    """A quantity of a thing that is not itself a property ("le forfait est à 19,99 €"): the
    property comes from the verb and the unit, resolved later."""
    adjective = verb.lower_ if verb is not None and verb.pos_ in {"ADJ", "VERB"} else ""
    lemma = verb.lemma_ if verb is not None else ""
    if verb is not None and any(c.lower_ == "charge" for c in verb.children):
        lemma = "prendre en charge"
    return Reading(_noun_phrase(noun, lo, hi), "", "verb", lemma, adjective, noun.lemma_,
                   _entity_label(noun.subtree))


def _property(noun: Any, lo: int, hi: int, how: str, other: Any = None) -> Reading:
    predicate, subject = _split_noun(noun, lo, hi)
    named = _phrase(subject) or None
    if named is None and other is not None and _nominal(other) and not _property_noun(other):
        named = _noun_phrase(other, lo, hi) or None  # "Chaque compte bénéficie d'un quota de 50 Go"
    label = _entity_label(subject) if subject else _entity_label(other.subtree) if named and other is not None else ""
    return Reading(named, _phrase(predicate), how, entity=label)


def _entity_label(tokens: Iterable[Any]) -> str:
    return next((t.ent_type_ for t in tokens if t.ent_type_), "")


# The entity type a new, named subject is registered with: not in the ontology's list, so pending
# until a reviewer approves it (``knowledge facts types``), and its facts stay low-confidence.
ENTITY_TYPES = {"ORG": "Organisation", "PER": "Person", "LOC": "Place", "MISC": "NamedEntity"}


def read_quantity(sent: Any, mention: Mention, offset: int) -> Reading | None:
    """The (subject, predicate) of one quantity of a parsed sentence, or None when the parse names
    no property ("Nous avons 30 clients" measures nothing the reader could ask about).

    The dependency reading comes first; when it finds no named property (the parser attached the
    quantity oddly, or to a thing), the sentence's first noun chunk headed by a property noun
    before the quantity is the property ("Le délai de livraison annoncé est de 5 jours").
    """
    lo, hi = offset + mention.start, offset + mention.end
    if _hypothetical(sent, lo, hi):
        return None
    reading = _parse_reading(sent, lo, hi)
    if reading is not None and reading.predicate:
        return reading
    for chunk in sent.noun_chunks:
        if chunk.end_char <= lo and _property_noun(chunk.root) and not _is_quantity(chunk.root, lo, hi):
            return _property(chunk.root, lo, hi, "chunk")
    if reading is None and sent.root.pos_ in {"VERB", "ADJ"}:  # the quantity hangs off an adverb
        nsubj = next((c for c in sent.root.children if c.dep_ in _SUBJECT_DEPS and _nominal(c)), None)
        if nsubj is not None and nsubj.idx < lo:
            return _thing(nsubj, lo, hi, sent.root)
    return reading


_CONDITION_MARKS = {"si", "s'", "lorsque", "lorsqu'", "quand", "sauf"}
_BOUND_VERBS = {"depasser", "exceder"}


def _hypothetical(sent: Any, lo: int, hi: int) -> bool:
    """A quantity in a condition ("si le remboursement n'apparaît pas dans les 5 jours") or under a
    negation ("n'est pas de 30 jours") is not stated; "ne doit pas dépasser 0,5 %" is a bound."""
    token = _token_at(sent, hi - 1)
    seen = 0
    while token is not None and seen < 12:
        for child in token.children:
            if child.dep_ == "mark" and child.lower_ in _CONDITION_MARKS:
                return True
            negated = child.dep_ == "advmod" and child.lower_ in {"ne", "n'", "pas"}
            if negated and fold(token.lemma_) not in _BOUND_VERBS \
                    and not any(fold(c.lemma_) in _BOUND_VERBS for c in token.children):
                return True
        if token.head.i == token.i:
            break
        token, seen = token.head, seen + 1
    return False


def _nominal(token: Any) -> bool:
    """A noun, or a word the tagger mistook for a verb but that has a determiner ("l'offre Starter")."""
    return token.pos_ in {"NOUN", "PROPN"} or any(c.dep_ == "det" for c in token.children)


def _parse_reading(sent: Any, lo: int, hi: int) -> Reading | None:
    unit_token = _token_at(sent, hi - 1)
    if unit_token is None:
        return None
    # climb from the unit to the word outside the quantity that governs it
    head = unit_token
    while _is_quantity(head, lo, hi) and head.head.i != head.i and _is_quantity(head.head, lo, hi):
        head = head.head
    anchor = head  # the top token of the quantity
    if any(c.dep_ == "cop" for c in anchor.children):  # "Le SLA … est de 99,7 %"
        nsubj = next((c for c in anchor.children if c.dep_ in _SUBJECT_DEPS), None)
        if nsubj is None or not _nominal(nsubj):
            return None
        return _property(nsubj, lo, hi, "copula") if _property_noun(nsubj) else _thing(nsubj, lo, hi)
    governor = anchor.head
    if governor.i == anchor.i:
        return None
    while governor.dep_ == "nmod" and governor.head.pos_ == "NOUN" and not _determined(governor):
        governor = governor.head  # "délai légal de rétractation de 14 jours": the quantity is the délai's
    if governor.pos_ in {"NOUN", "PROPN"} and anchor.dep_ in {"nmod", "appos", "amod", "nummod"}:
        if not _property_noun(governor):
            return None  # "les colis de plus de 30 kg sont…": a qualifier, not a statement
        verb = governor.head
        other = next((c for c in verb.children if c.dep_ in _SUBJECT_DEPS and c.i != governor.i), None)
        return _property(governor, lo, hi, "complement", other if governor.dep_ in _SUBJECT_DEPS | {"obj", "obl:arg"}
                         else None)
    if governor.pos_ in {"VERB", "ADJ", "AUX"} or any(c.dep_ == "cop" for c in governor.children):
        nsubj = next((c for c in governor.children if c.dep_ in _SUBJECT_DEPS), None)
        if nsubj is None and governor.dep_ in {"xcomp", "acl", "acl:relcl", "conj"}:
            nsubj = next((c for c in governor.head.children if c.dep_ in _SUBJECT_DEPS), None)
            if nsubj is None and governor.head.pos_ in {"NOUN", "PROPN"}:
                nsubj = governor.head
        if nsubj is not None and not _nominal(nsubj):
            nsubj = None  # "Nous garantissons un SLA de 99,7 %": the speaker is not the subject
        obj = next((c for c in governor.children if c.dep_ in {"obj", "obl:arg"} and c.pos_ == "NOUN"
                    and not _is_quantity(c, lo, hi)), None)
        if obj is not None and _property_noun(obj):
            return _property(obj, lo, hi, "verb", nsubj)
        if nsubj is not None and _property_noun(nsubj):
            return _property(nsubj, lo, hi, "verb")  # "la disponibilité … passe à 99,9 %"
        thing = nsubj if nsubj is not None else obj
        return _thing(thing, lo, hi, governor) if thing is not None else None
    return None


_PROPERTY_NOUNS = frozenset("""
delai duree sla disponibilite taux tarif prix cout frais montant seuil plafond limite capacite quota conservation
retention garantie preavis periode engagement remise reduction penalite franchise temps volume
debit latence autonomie poids distance validite anciennete essai indemnite acompte majoration hausse augmentation
commission budget cotisation objectif niveau uptime credit quantite nombre taille hauteur longueur largeur
epaisseur tension puissance vitesse consommation temperature pression age loyer depot remuneration salaire prime
conge redevance espace bande rto rpo perte report retractation avoir interet penalites charge periodicite
couverture marge
""".split())


def _determined(token: Any) -> bool:
    return any(c.dep_ == "det" for c in token.children)


def _property_noun(token: Any) -> bool:
    return fold(token.lemma_ or token.text) in _PROPERTY_NOUNS or fold(token.text) in _PROPERTY_NOUNS


# A verb stating a quantity of a thing, as the noun of the property it gives ("répond sous 24 h":
# délai de réponse); the ones naming the property themselves ("coûte 49 €": prix).
_VERB_NOUNS = {
    "repondre": "réponse", "conserver": "conservation", "archiver": "archivage", "garantir": "garantie",
    "renouveler": "renouvellement", "fermer": "fermeture", "supprimer": "suppression", "livrer": "livraison",
    "rembourser": "remboursement", "traiter": "traitement", "expedier": "expédition",
    "notifier": "notification", "confirmer": "confirmation", "payer": "paiement", "payable": "paiement",
    "retourner": "retour", "renvoyer": "retour", "valider": "validation", "resoudre": "résolution",
    "restaurer": "restauration", "prendre en charge": "prise en charge", "signaler": "signalement",
    "garanti": "garantie",
}
_VERB_PREDICATES = {"couter": "prix", "facturer": "tarif", "remunerer": "rémunération", "durer": "durée",
                    "valable": "durée de validité", "limiter": "limite", "plafonner": "plafond",
                    "indemniser": "indemnisation", "verser": "montant"}
# Verbs that only say the thing happens ("le remboursement intervient sous 14 jours"): the délai is
# the thing's own ("délai de remboursement"); any other verb ("passe au statut … en 3 jours") may
# time another step, so its délai is not named after the thing.
_LIGHT_VERBS = {"etre", "accepter", "effectuer", "intervenir", "avoir", "faire", "operer", "realiser", "possible",
                "autoriser", "accepte", "emettre", "proceder"}
_DURATION_VERBS = {"conserver", "archiver", "garantir", "garanti", "durer"}
_GENERIC_BY_KIND = {"time": "délai", "ratio": "taux", "EUR": "prix", "USD": "prix", "data": "capacité",
                    "km": "distance", "mass": "poids"}


def resolve(reading: Reading, mention: Mention, rules: Rules, ontology: Ontology) -> tuple[str, str, float]:
    """(subject, predicate, confidence factor) through the ontology's phrases and terms."""
    factor = 1.0
    predicate, subject = reading.predicate, reading.subject
    inferred = not predicate
    if inferred:
        predicate = _inferred_predicate(reading, mention, rules)
    # "SLA" (of the document), "délai de remboursement", "seuil de livraison gratuite": ontology phrases
    composed = subject and (not inferred or fold(reading.verb) in _LIGHT_VERBS)
    candidates = [predicate] + ([f"{predicate} de {subject}", f"{predicate} de {reading.head}"] if composed else [])
    for candidate in candidates:
        pair = ontology.phrase(candidate)
        if pair:
            subject_out = subject if pair[0] == DOCUMENT_SUBJECT and subject else pair[0]
            if subject_out != pair[0] and not ontology.subject(subject_out).known:
                factor *= 0.6  # "le SLA de Microsoft 365": a new entity, named by no reviewer yet
            return subject_out, pair[1], factor
    if subject and ontology.subject(subject).known and ontology.is_known_predicate(predicate):
        return subject, predicate, factor
    if inferred:
        factor *= 0.8  # the property is inferred from the verb and the unit, not named
    if not ontology.is_known_predicate(predicate):
        factor *= 0.9
    if len(predicate.split()) == 1 and subject is None and not ontology.is_known_predicate(predicate):
        factor *= 0.6  # "le délai est de 14 jours": a délai of what?
    if subject is None:
        return DOCUMENT_SUBJECT, predicate, factor
    if not ontology.subject(subject).known:
        factor *= 0.6  # a new entity: a reviewer names it before its conflicts count
    return subject, predicate, factor


def _inferred_predicate(reading: Reading, mention: Mention, rules: Rules) -> str:
    verb = fold(reading.verb)
    if verb in _VERB_PREDICATES:
        return _VERB_PREDICATES[verb]
    canonical, _ = rules.canonical_unit(mention.unit)
    dimension = rules.dimension(canonical)
    kind = "time" if canonical in {"business_day", "business_hour"} else dimension[0] if dimension else canonical
    generic = _GENERIC_BY_KIND.get(kind or "", "valeur")
    if kind == "time" and verb in _DURATION_VERBS:
        generic = "durée"
    if canonical in {"EUR", "USD"} and mention.limit == "lower":
        generic = "seuil"  # "gratuite dès 59 €": the amount from which something holds
    noun = _VERB_NOUNS.get(verb)
    if noun:
        return f"{generic} de {noun}"
    if reading.adjective and generic == "seuil":
        return f"seuil de {reading.subject} {reading.adjective}"  # "seuil de livraison gratuite"
    return generic


# What the head noun of a predicate measures; a quantity of another kind is not its value
# ("la remise … 14 jours ouvrés" is a misreading, "le tarif … 14 jours" too).
_KIND_OF_NOUN = {
    "delai": "time", "duree": "time", "preavis": "time", "periode": "time", "temps": "time", "anciennete": "time",
    "tarif": "money", "prix": "money", "cout": "money", "frais": "money", "montant": "money", "loyer": "money",
    "budget": "money", "plafond": None, "seuil": None, "taux": "ratio", "sla": "ratio", "disponibilite": "ratio",
    "remise": "ratio money", "penalite": "ratio money", "distance": "km", "poids": "mass", "capacite": "data",
    "quota": "data",
}


def _kind_of_unit(canonical: str | None, rules: Rules) -> str | None:
    if canonical in {"EUR", "USD"}:
        return "money"
    if canonical in {"business_day", "business_hour"}:
        return "time"
    dimension = rules.dimension(canonical)
    return dimension[0] if dimension else canonical


def fits(predicate: str, mention: Mention, rules: Rules) -> bool:
    """Whether the predicate can have this quantity as its value (a délai is a time, a tarif money)."""
    words = fold(predicate).replace("(", " ").split()
    if not words or words[0] == "valeur":
        return False  # nothing named what the number measures
    head = next((w for w in words if w in _KIND_OF_NOUN or w.rstrip("sx") in _KIND_OF_NOUN), None)
    expected = _KIND_OF_NOUN.get(head, _KIND_OF_NOUN.get(head.rstrip("sx"))) if head else None
    if expected is None:
        return True
    canonical, _ = rules.canonical_unit(mention.unit)
    return _kind_of_unit(canonical, rules) in expected.split()


def bounded_predicate(predicate: str, mention: Mention) -> str:
    return f"{predicate} ({mention.bound})" if mention.bound else predicate


def quantity_of(mention: Mention, rules: Rules) -> Quantity:
    canonical, factor = rules.canonical_unit(mention.unit)
    return Quantity(round(mention.number * factor, 12), canonical, mention.written)


def has_quantity(text: str, rules: Rules) -> bool:
    """Cheap test before any parse: does the text hold a number (or number word) and a unit?"""
    return re.search(rules.quantity_regex, fold(text)) is not None


def parse(texts: list[str]) -> list[Any]:
    """Parse every statement text of the run in one batched ``nlp.pipe``."""
    if not texts:
        return []
    return list(french_pipeline().pipe(texts, batch_size=BATCH_SIZE))

