"""Declarative risk rules (docs/risk-rules.md): a versioned rule set read from YAML or JSON,
validated whole, and compiled to closures so that evaluating a row costs microseconds.

A file is data, never code: there is no `eval`, conditions are a small tree of `all` / `any` /
`not` over comparisons of a feature with a number, a list of numbers or another feature, and
every dimension (rules, depth, nodes, list lengths, text) has a named bound. A file with any
error is refused whole, each error naming its path (`rules[3].when.all[1].op`).

Pure: no I/O beyond reading the file it is given, no third-party imports but PyYAML.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from strongroom.core.errors import InvalidRequest
from strongroom.ledger.model import Verdict

RULES_FILE_BYTES_MAX: Final = 1 << 20
RULES_MAX: Final = 500
RULE_ID_LENGTH_MAX: Final = 64
REASON_LENGTH_MAX: Final = 200
VERSION_LENGTH_MAX: Final = 64
FEATURE_NAME_LENGTH_MAX: Final = 100
CONDITION_DEPTH_MAX: Final = 8  # `all`/`any`/`not` nesting of one rule's `when`
CONDITION_NODES_MAX: Final = 64  # comparisons and groups in one rule's `when`
IN_VALUES_MAX: Final = 256  # the list of an `in` comparison
ERRORS_REPORTED_MAX: Final = 20  # a refused file names at most this many errors
VERSION_HASH_HEX: Final = 12
assert CONDITION_DEPTH_MAX < CONDITION_NODES_MAX

OPERATORS: Final = (">", ">=", "<", "<=", "==", "!=", "in")
_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_FEATURE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")

# Most severe last: a decision takes the most severe verdict that fired.
SEVERITY: Final[Mapping[Verdict, int]] = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}

Row = Mapping[str, float]
Test = Callable[[Row], bool]
_NAN: Final = math.nan


class RuleSetError(InvalidRequest):
    """A rules file that cannot be used: it is refused whole, each error naming its path."""

    def __init__(self, errors: Sequence[str], *, source: str = "rules") -> None:
        assert errors
        shown = list(errors[:ERRORS_REPORTED_MAX])
        if len(errors) > len(shown):
            shown.append(f"... and {len(errors) - len(shown)} more")
        super().__init__(f"{source}: " + "; ".join(shown), code="invalid_rules")
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule: `test(row)` says whether its condition holds on a row of features."""

    id: str
    action: Verdict
    reason: str
    features: frozenset[str]
    test: Test


@dataclass(frozen=True, slots=True)
class ScoreThresholds:
    """The model's calibrated score at or past `block` blocks, at or past `review` reviews;
    an anomaly score (higher is more anomalous) at or past `anomaly_review` reviews. A
    threshold left out, or one whose scorer the policy lacks, never fires."""

    review: float | None = None
    block: float | None = None
    anomaly_review: float | None = None


class RuleSet:
    """A validated, compiled rule set. `version` is the declared version and the first 12 hex
    digits of the SHA-256 of the set's canonical JSON, so an edited file is told apart even
    under the same declared version; layout, comments and key order do not change it."""

    __slots__ = ("_document", "declared_version", "features", "rules", "score", "version")

    def __init__(
        self,
        declared_version: str,
        rules: tuple[Rule, ...],
        score: ScoreThresholds,
        document: Mapping[str, Any],
    ) -> None:
        self.declared_version = declared_version
        self.rules = rules
        self.score = score
        self._document = document
        self.features: frozenset[str] = frozenset().union(*(r.features for r in rules))
        digest = hashlib.sha256(canonical_json(document).encode()).hexdigest()
        self.version = f"{declared_version}:{digest[:VERSION_HASH_HEX]}"

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Reads a `.json` file as JSON and anything else as YAML."""
        try:
            size = path.stat().st_size
            if size > RULES_FILE_BYTES_MAX:
                raise RuleSetError([f"the file has {size} bytes, over {RULES_FILE_BYTES_MAX}"])
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise RuleSetError([f"cannot read the file: {reason}"], source=path.name) from None
        try:
            return cls.parse(text, json_only=path.suffix.lower() == ".json")
        except RuleSetError as exc:
            raise RuleSetError(exc.errors, source=path.name) from None

    @classmethod
    def parse(cls, text: str, *, json_only: bool = False) -> RuleSet:
        if len(text.encode()) > RULES_FILE_BYTES_MAX:
            raise RuleSetError([f"the text is over {RULES_FILE_BYTES_MAX} bytes"])
        try:
            document = json.loads(text) if json_only else yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
        except json.JSONDecodeError as exc:
            raise RuleSetError([f"not JSON: {exc.msg} at line {exc.lineno}"]) from None
        except RecursionError:  # a hostile file: deeper than the parser's stack (the bound is 8)
            raise RuleSetError(["nested too deeply to read"]) from None
        except ValueError:  # JSON's integers past 4,300 digits
            raise RuleSetError(["not JSON: a number too long to read"]) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "malformed"
            raise RuleSetError([f"not YAML: {problem}{where}"]) from None
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: object) -> RuleSet:
        try:
            return _Compiler().rule_set(document)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            # The compiler answers every malformation it knows in words (RuleSetError, no
            # ValueError); a document shaped in a way it did not foresee is still refused as
            # one, never a traceback.
            raise RuleSetError(
                [f"the document cannot be read as rules ({type(exc).__name__})"]
            ) from None

    def document(self) -> dict[str, Any]:
        """The canonical form: numbers as floats, defaults made explicit (what is hashed)."""
        return json.loads(canonical_json(self._document))  # type: ignore[no-any-return]

    def check(self, feature_names: Iterable[str]) -> None:
        """Refuses a set whose rules read a feature that the engine does not compute."""
        known = set(feature_names)
        errors = [
            f"rules[{i}] ({rule.id}): unknown feature {name!r}"
            for i, rule in enumerate(self.rules)
            for name in sorted(rule.features - known)
        ]
        if errors:
            raise RuleSetError(errors)

    def evaluate(self, row: Row) -> list[Rule]:
        """The rules whose condition holds on `row`, in the file's order."""
        return [rule for rule in self.rules if rule.test(row)]


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _StrictLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML is untyped
    """PyYAML's safe loader, refusing a mapping with a key twice (PyYAML keeps the last one
    silently, which would drop half of a rule without a word)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            # A list or a mapping as a key (`? [a, b]`): no rule set has one.
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping's key must be text", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_COMPARE: Final[Mapping[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def _compare_value(name: str, op: str, value: float) -> Test:
    """A comparison with a constant. A missing or NaN feature makes every comparison false,
    `!=` included (NaN compares false with everything but `!=`)."""
    if op == ">":
        return lambda row: row.get(name, _NAN) > value
    if op == ">=":
        return lambda row: row.get(name, _NAN) >= value
    if op == "<":
        return lambda row: row.get(name, _NAN) < value
    if op == "<=":
        return lambda row: row.get(name, _NAN) <= value
    if op == "==":
        return lambda row: row.get(name, _NAN) == value
    assert op == "!=", op

    def differs(row: Row) -> bool:
        x = row.get(name, _NAN)
        return x == x and x != value  # x == x is false only for NaN

    return differs


def _compare_in(name: str, values: frozenset[float]) -> Test:
    return lambda row: row.get(name, _NAN) in values


def _compare_features(name: str, op: str, other: str, times: float) -> Test:
    compare = _COMPARE[op]

    def test(row: Row) -> bool:
        x = row.get(name, _NAN)
        y = row.get(other, _NAN) * times
        return x == x and y == y and compare(x, y)  # NaN is equal to nothing

    return test


def _all(tests: tuple[Test, ...]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda row: a(row) and b(row)

    def every(row: Row) -> bool:
        for test in tests:  # noqa: SIM110 -- a loop costs half of all(generator) per row
            if not test(row):
                return False
        return True

    return every


def _any(tests: tuple[Test, ...]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda row: a(row) or b(row)

    def some(row: Row) -> bool:
        for test in tests:  # noqa: SIM110 -- as in every()
            if test(row):
                return True
        return False

    return some


def _not(test: Test) -> Test:
    return lambda row: not test(row)


class _Compiler:
    """Validates a parsed document and compiles it, collecting every error with its path."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._nodes = 0
        self._features: set[str] = set()
        self._rule_id: str | None = None  # named in the errors of the rule being read

    def error(self, path: str, message: str) -> None:
        rule = f" (rule {self._rule_id})" if self._rule_id else ""
        self.errors.append(f"{path}: {message}{rule}")

    def rule_set(self, document: object) -> RuleSet:
        if not isinstance(document, dict):
            raise RuleSetError([f"the file must hold a mapping, not {_kind(document)}"])
        self._keys("", document, required={"version", "rules"}, optional={"score"})
        version = document.get("version")
        if "version" in document and not (
            isinstance(version, str) and 0 < len(version) <= VERSION_LENGTH_MAX
        ):
            self.error("version", f"must be text of 1 to {VERSION_LENGTH_MAX} characters")
        score, score_doc = self._score(document.get("score"))
        rules: list[Rule] = []
        rules_doc: list[dict[str, Any]] = []
        raw_rules = document.get("rules", [])
        if not isinstance(raw_rules, list):
            self.error("rules", f"must be a list, not {_kind(raw_rules)}")
        elif len(raw_rules) > RULES_MAX:
            self.error("rules", f"{len(raw_rules)} rules, over {RULES_MAX}")
        else:
            seen: dict[str, int] = {}
            for i, raw in enumerate(raw_rules):
                compiled = self._rule(f"rules[{i}]", raw)
                if compiled is None:
                    continue
                rule, rule_doc = compiled
                if rule.id in seen:
                    self.error(f"rules[{i}].id", f"{rule.id!r} repeats rules[{seen[rule.id]}]")
                seen.setdefault(rule.id, i)
                rules.append(rule)
                rules_doc.append(rule_doc)
        if self.errors:
            raise RuleSetError(self.errors)
        assert isinstance(version, str)
        canonical = {"version": version, "score": score_doc, "rules": rules_doc}
        return RuleSet(version, tuple(rules), score, canonical)

    def _keys(
        self, path: str, doc: dict[Any, Any], *, required: set[str], optional: set[str]
    ) -> None:
        prefix = f"{path}." if path else ""
        for key in doc:
            if key not in required and key not in optional:
                allowed = ", ".join(sorted(required | optional))
                self.error(f"{prefix}{key}", f"unknown key (expected {allowed})")
        for key in sorted(required - set(doc)):
            self.error(f"{prefix}{key}", "is required")

    def _score(self, raw: object) -> tuple[ScoreThresholds, dict[str, float | None]]:
        names = ("review", "block", "anomaly_review")
        values: dict[str, float | None] = dict.fromkeys(names)
        if raw is None:
            return ScoreThresholds(), values
        if not isinstance(raw, dict):
            self.error("score", f"must be a mapping, not {_kind(raw)}")
            return ScoreThresholds(), values
        self._keys("score", raw, required=set(), optional=set(names))
        for name in names:
            if name not in raw:
                continue
            value = self._number(f"score.{name}", raw[name])
            if value is None:
                continue
            if name != "anomaly_review" and not 0.0 <= value <= 1.0:
                self.error(f"score.{name}", f"{value} is not a probability in [0, 1]")
                continue
            values[name] = value
        review, block = values["review"], values["block"]
        if review is not None and block is not None and review > block:
            self.error("score.review", f"{review} is over score.block ({block})")
        return ScoreThresholds(review, block, values["anomaly_review"]), values

    def _rule(self, path: str, raw: object) -> tuple[Rule, dict[str, Any]] | None:
        if not isinstance(raw, dict):
            self.error(path, f"a rule must be a mapping, not {_kind(raw)}")
            return None
        errors_before = len(self.errors)
        rule_id = raw.get("id")
        self._rule_id = rule_id if isinstance(rule_id, str) and _ID.match(rule_id) else None
        self._keys(path, raw, required={"id", "when", "action", "reason"}, optional=set())
        if "id" in raw and not (
            isinstance(rule_id, str)
            and len(rule_id) <= RULE_ID_LENGTH_MAX
            and _ID.match(rule_id) is not None
        ):
            self.error(
                f"{path}.id",
                f"{_show(rule_id)} is not a snake_case id of 1 to {RULE_ID_LENGTH_MAX} characters",
            )
        action = raw.get("action")
        if "action" in raw and (
            not isinstance(action, str) or action not in {v.value for v in Verdict}
        ):
            self.error(f"{path}.action", f"{_show(action)} is not one of allow, review, block")
        reason = raw.get("reason")
        if "reason" in raw and not (
            isinstance(reason, str) and reason.strip() and len(reason) <= REASON_LENGTH_MAX
        ):
            self.error(f"{path}.reason", f"must be text of 1 to {REASON_LENGTH_MAX} characters")
        self._nodes = 0
        self._features = set()
        compiled = self._condition(f"{path}.when", raw["when"], 1) if "when" in raw else None
        self._rule_id = None
        if len(self.errors) > errors_before or compiled is None:
            return None
        test, when_doc = compiled
        assert isinstance(rule_id, str)
        assert isinstance(reason, str)
        assert isinstance(action, str)
        rule = Rule(rule_id, Verdict(action), reason, frozenset(self._features), test)
        return rule, {"id": rule_id, "when": when_doc, "action": action, "reason": reason}

    def _condition(self, path: str, raw: object, depth: int) -> tuple[Test, Any] | None:
        self._nodes += 1
        if self._nodes > CONDITION_NODES_MAX:
            if self._nodes == CONDITION_NODES_MAX + 1:
                self.error(path, f"the condition has over {CONDITION_NODES_MAX} nodes")
            return None
        if depth > CONDITION_DEPTH_MAX:
            self.error(path, f"nested over {CONDITION_DEPTH_MAX} levels deep")
            return None
        if not isinstance(raw, dict):
            self.error(path, f"a condition must be a mapping, not {_kind(raw)}")
            return None
        groups = [key for key in ("all", "any", "not") if key in raw]
        if groups:
            if len(raw) != 1:
                extra = ", ".join(sorted(str(k) for k in raw if k != groups[0]))
                self.error(path, f"{groups[0]!r} stands alone in its mapping (also found: {extra})")
                return None
            key = groups[0]
            if key == "not":
                inner = self._condition(f"{path}.not", raw["not"], depth + 1)
                return None if inner is None else (_not(inner[0]), {"not": inner[1]})
            items = raw[key]
            if not isinstance(items, list) or not items:
                self.error(f"{path}.{key}", "must be a non-empty list of conditions")
                return None
            parts = [
                self._condition(f"{path}.{key}[{i}]", item, depth + 1)
                for i, item in enumerate(items)
            ]
            if any(part is None for part in parts):
                return None
            tests = tuple(part[0] for part in parts if part is not None)
            docs = [part[1] for part in parts if part is not None]
            return (_all(tests) if key == "all" else _any(tests)), {key: docs}
        return self._comparison(path, raw)

    def _comparison(self, path: str, raw: dict[Any, Any]) -> tuple[Test, Any] | None:
        errors_before = len(self.errors)
        self._keys(path, raw, required={"feature", "op", "value"}, optional=set())
        name = self._feature(f"{path}.feature", raw.get("feature"))
        op = raw.get("op")
        if "op" in raw and op not in OPERATORS:
            hint = ' (in YAML, quote it: op: ">")' if op in (None, "") else ""
            self.error(
                f"{path}.op",
                f"unknown operator {_show(op)}{hint}; expected one of {' '.join(OPERATORS)}",
            )
        if len(self.errors) > errors_before or "value" not in raw:
            return None
        assert name is not None
        assert isinstance(op, str)
        value = raw["value"]
        if op == "in":
            if not isinstance(value, list) or not 0 < len(value) <= IN_VALUES_MAX:
                self.error(f"{path}.value", f"`in` takes a list of 1 to {IN_VALUES_MAX} numbers")
                return None
            numbers = [self._number(f"{path}.value[{i}]", v) for i, v in enumerate(value)]
            if any(n is None for n in numbers):
                return None
            members = sorted({n for n in numbers if n is not None})
            return _compare_in(name, frozenset(members)), {
                "feature": name,
                "op": op,
                "value": members,
            }
        if isinstance(value, dict):
            self._keys(f"{path}.value", value, required={"feature"}, optional={"times"})
            other = self._feature(f"{path}.value.feature", value.get("feature"))
            times = self._number(f"{path}.value.times", value.get("times", 1.0))
            if other is None or times is None or len(self.errors) > errors_before:
                return None
            ref = {"feature": other, "times": times}
            return _compare_features(name, op, other, times), {
                "feature": name,
                "op": op,
                "value": ref,
            }
        number = self._number(f"{path}.value", value)
        if number is None:
            return None
        return _compare_value(name, op, number), {"feature": name, "op": op, "value": number}

    def _feature(self, path: str, raw: object) -> str | None:
        if raw is None:
            return None  # reported as a missing key
        if not (
            isinstance(raw, str)
            and len(raw) <= FEATURE_NAME_LENGTH_MAX
            and _FEATURE.match(raw) is not None
        ):
            self.error(path, f"{_show(raw)} is not a feature name")
            return None
        self._features.add(raw)
        return raw

    def _number(self, path: str, raw: object) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            hint = ""
            if isinstance(raw, bool):
                hint = " (a flag is a feature of 0 or 1: write 1 or 0)"
            elif isinstance(raw, str) and _parses_as_float(raw):
                hint = " (YAML reads this as text: write it with a decimal point, e.g. 1000.0)"
            self.error(path, f"{_show(raw)} is not a number{hint}")
            return None
        try:
            value = float(raw)
        except OverflowError:  # an integer of hundreds of digits
            value = math.inf
        if not math.isfinite(value):
            shown = raw if isinstance(raw, float) else _show(raw)  # inf, or a 400-digit int
            self.error(path, f"{shown} is not a finite number")
            return None
        return value


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _kind(value: object) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "text"}
    return names.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    """A value echoed in an error, bounded and quoted the way the file would write it."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # a YAML alias that contains itself, or an integer past 4,300 digits
        text = f"<{_kind(value)}>"
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "OPERATORS",
    "SEVERITY",
    "Rule",
    "RuleSet",
    "RuleSetError",
    "ScoreThresholds",
]
