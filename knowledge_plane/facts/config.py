"""The ontology (canonical subjects, predicates, entity types) and the rules (units, tolerances,
severities, confidences) of the fact store, loaded from the YAML files kept beside this module.

Both are validated on load so a broken alias table fails loudly at start-up instead of silently
splitting one subject into two.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge_plane.facts.normalize import NUMBER_RE, Quantity, fold, norm_key, parse_number

HERE = Path(__file__).resolve().parent
ONTOLOGY_PATH = HERE / "ontology.yaml"
RULES_PATH = HERE / "rules.yaml"
DOCUMENT_SUBJECT = "{document}"
_ARTICLE = re.compile(r"^(?:(?:le|la|les|un|une|des|the|a|an)\s+|l['’](?=\w))", re.I)


class ConfigError(ValueError):
    """The ontology or rules file is inconsistent."""


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must be a mapping")
    return data


@dataclass(frozen=True)
class Term:
    """A canonical subject or predicate: its label, its key, and its type if the ontology gives one."""

    label: str
    key: str
    type: str | None = None
    known: bool = False


class Ontology:
    def __init__(self, data: dict[str, Any]):
        self.entity_types: set[str] = {str(t) for t in data.get("entity_types") or []}
        self._subjects: dict[str, Term] = {}
        self._predicates: dict[str, Term] = {}
        self._subject_aliases: dict[str, list[str]] = {}
        self._predicate_aliases: dict[str, list[str]] = {}
        for label, spec in (data.get("subjects") or {}).items():
            spec = spec or {}
            term = Term(str(label), norm_key(label), spec.get("type"), True)
            if term.type and term.type not in self.entity_types:
                raise ConfigError(f"subject {label!r} has type {term.type!r}, not listed in entity_types")
            self._add(self._subjects, self._subject_aliases, term, spec.get("aliases") or [], "subject")
        for label, spec in (data.get("predicates") or {}).items():
            spec = spec or {}
            term = Term(str(label), norm_key(label), spec.get("fact_type"), True)
            self._add(self._predicates, self._predicate_aliases, term, spec.get("aliases") or [], "predicate")
        self._phrases: dict[str, tuple[str, str]] = {}
        for phrase, pair in (data.get("phrases") or {}).items():
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ConfigError(f"phrase {phrase!r} must map to [subject, predicate]")
            self._phrases[norm_key(phrase)] = (str(pair[0]), str(pair[1]))

    @staticmethod
    def _add(table: dict[str, Term], aliases_of: dict[str, list[str]], term: Term, aliases: list[Any],
             kind: str) -> None:
        for alias in [term.label, *aliases]:
            key = norm_key(alias)
            other = table.get(key)
            if other is not None and other.label != term.label:
                raise ConfigError(f"{kind} alias {alias!r} names both {other.label!r} and {term.label!r}")
            table[key] = term
        aliases_of[term.key] = sorted({term.label, *map(str, aliases)})

    def subject(self, text: str) -> Term:
        """The canonical subject for a written one; an unknown subject is its own canonical form."""
        return self._term(self._subjects, text)

    def predicate(self, text: str) -> Term:
        return self._term(self._predicates, text)

    @staticmethod
    def _term(table: dict[str, Term], text: str) -> Term:
        label = _ARTICLE.sub("", " ".join(str(text).split()))  # "le délai d'envoi" is "délai d'envoi"
        key = norm_key(label)
        return table.get(key) or table.get(norm_key(text)) or Term(label, key)

    def phrase(self, text: str) -> tuple[str, str] | None:
        """(subject, predicate) named together by a key such as "Seuil de livraison gratuite"."""
        return self._phrases.get(norm_key(text))

    def is_known_predicate(self, text: str) -> bool:
        return norm_key(text) in self._predicates

    def subject_aliases(self, key: str) -> list[str]:
        return self._subject_aliases.get(key, [])

    def predicate_aliases(self, key: str) -> list[str]:
        return self._predicate_aliases.get(key, [])


@dataclass(frozen=True)
class Tolerance:
    relative: float = 0.0
    absolute: float = 0.0


class Rules:
    def __init__(self, data: dict[str, Any]):
        self._units: dict[str, tuple[str, float]] = {}
        for canonical, spec in (data.get("units") or {}).items():
            factor = float((spec or {}).get("factor", 1.0))
            for alias in [canonical, *((spec or {}).get("aliases") or [])]:
                key = fold(str(alias)).strip()
                if key in self._units and self._units[key][0] != canonical:
                    raise ConfigError(f"unit alias {alias!r} names both {self._units[key][0]!r} and {canonical!r}")
                self._units[key] = (str(canonical), factor if alias != canonical else 1.0)
        self._dimension: dict[str, tuple[str, float]] = {}
        for dimension, bases in (data.get("dimensions") or {}).items():
            for unit, base in (bases or {}).items():
                self._dimension[str(unit)] = (str(dimension), float(base))
        aliases = sorted(self._units, key=len, reverse=True)
        self.unit_regex = "|".join(re.escape(a) for a in aliases)
        # A quantity in folded text; (?![a-z0-9]) keeps "h" from matching the start of "heures"
        self.quantity_regex = rf"(?P<number>{NUMBER_RE}) ?(?P<unit>{self.unit_regex})(?![a-z0-9])"
        self._leading = re.compile(
            rf"^\s*(?P<number>{NUMBER_RE})\s*(?:(?P<unit>{self.unit_regex})(?![a-z0-9]))?(?P<rest>.*)$", re.S)
        self.tolerances = {str(k): Tolerance(float(v.get("relative", 0)), float(v.get("absolute", 0)))
                           for k, v in (data.get("tolerances") or {}).items()}
        self.critical_fact_types: set[str] = {str(t) for t in data.get("critical_fact_types") or []}
        thresholds = data.get("severity_thresholds") or {}
        self.high_pct = float(thresholds.get("high", 10))
        self.medium_pct = float(thresholds.get("medium", 1))
        self.relation_severity = {str(k): str(v) for k, v in (data.get("relation_severity") or {}).items()}
        self.fact_types: list[str] = [str(t) for t in data.get("fact_types") or []]
        self.value_bounds: dict[str, tuple[float | None, float | None]] = {
            str(k): tuple(None if (v or {}).get(end) is None else float(v[end]) for end in ("min", "max"))
            for k, v in (data.get("value_bounds") or {}).items()
        }
        self.fact_type_by_unit = {str(k): str(v) for k, v in (data.get("fact_type_by_unit") or {}).items()}
        self.method_confidence = {str(k): float(v) for k, v in (data.get("method_confidence") or {}).items()}
        self.truth_level_factor = {str(k): float(v) for k, v in (data.get("truth_level_factor") or {}).items()}
        self.low_confidence = float(data.get("low_confidence", 0.5))

    # -- units and values -------------------------------------------------------------------
    def canonical_unit(self, unit: Any) -> tuple[str | None, float]:
        """(canonical unit, scale factor) for a written unit; an unknown unit is kept as written."""
        if unit is None or str(unit).strip() == "":
            return None, 1.0
        key = fold(str(unit)).strip()
        if key in self._units:
            return self._units[key]
        return " ".join(str(unit).split()), 1.0

    def quantity(self, value: Any, unit: Any = None) -> Quantity:
        """Normalise a value and its unit (from front matter or a key: value line).

        Numbers carry their unit (``30`` + ``jours`` → 30 day; ``"99,7 %"`` → 0.997 ratio);
        anything else is a text value compared on its normalised form.
        """
        written = f"{value} {unit}".strip() if unit not in (None, "") else str(value).strip()
        if isinstance(value, bool) or value is None:
            return Quantity(str(value).lower(), None, written)
        if isinstance(value, (int, float)):
            canonical, factor = self.canonical_unit(unit)
            return Quantity(round(float(value) * factor, 12), canonical, written)
        text = " ".join(str(value).split())
        match = self._leading.match(fold(text))
        if match and (match.group("unit") or not match.group("rest").strip()):
            number = parse_number(text[match.start("number"):match.end("number")])
            unit_text = match.group("unit") if match.group("unit") else unit
            canonical, factor = self.canonical_unit(unit_text)
            return Quantity(round(number * factor, 12), canonical, written)
        return Quantity(text, None, written)

    def dimension(self, unit: str | None) -> tuple[str, float] | None:
        return self._dimension.get(unit) if unit else None

    def tolerance(self, fact_type: str | None) -> Tolerance:
        return self.tolerances.get(fact_type or "", self.tolerances.get("default", Tolerance()))

    def compare(self, a: float | str | None, a_unit: str | None, b: float | str | None, b_unit: str | None,
                fact_type: str | None) -> tuple[bool, float | None]:
        """(same value within the fact type's tolerance, difference in % of the larger value)."""
        if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
            return (isinstance(a, str) and isinstance(b, str) and norm_key(a) == norm_key(b)), None
        if a_unit == b_unit or {a_unit, b_unit} <= {None, "ratio"}:
            x, y = float(a), float(b)
        else:
            da, db = self.dimension(a_unit), self.dimension(b_unit)
            if not (da and db and da[0] == db[0]):
                return False, None  # incompatible units never count as the same value
            x, y = float(a) * da[1], float(b) * db[1]
        tol = self.tolerance(fact_type)
        scale = max(abs(x), abs(y))
        diff = abs(x - y)
        pct = 0.0 if scale == 0 else round(diff / scale * 100, 4)
        return diff <= max(tol.absolute, tol.relative * scale) + 1e-12, pct

    def fact_type_for(self, unit: str | None, value_type: str) -> str:
        if value_type == "text":
            return "POLICY"
        if unit in self.fact_type_by_unit:
            return self.fact_type_by_unit[unit]
        dimension = self.dimension(unit)
        if dimension and dimension[0] in self.fact_type_by_unit:
            return self.fact_type_by_unit[dimension[0]]
        return "OTHER"

    def severity(self, kind: str, fact_type: str | None, diff_pct: float | None) -> str:
        if kind != "CONTRADICTS":
            return self.relation_severity.get(kind, "low")
        if fact_type in self.critical_fact_types:
            return "critical"
        if diff_pct is None or diff_pct >= self.high_pct:
            return "high"
        return "medium" if diff_pct >= self.medium_pct else "low"

    def confidence(self, method: str, truth_level: str | None) -> float:
        base = self.method_confidence.get(method, 0.5)
        return round(base * self.truth_level_factor.get(truth_level or "", 0.85), 4)


@lru_cache(maxsize=4)
def load_ontology(path: Path = ONTOLOGY_PATH) -> Ontology:
    return Ontology(_load_yaml(path))


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> Rules:
    return Rules(_load_yaml(path))


@lru_cache(maxsize=1)
def config_digest() -> str:
    """Digest of the ontology and rules files: part of the extractor version."""
    digest = hashlib.sha256()
    for path in (ONTOLOGY_PATH, RULES_PATH):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
