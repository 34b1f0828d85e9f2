"""Risk rules (risk.rules): parsing, every operator, errors named by path, version hashing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from strongroom.ledger.model import Verdict
from strongroom.risk.rules import (
    CONDITION_DEPTH_MAX,
    CONDITION_NODES_MAX,
    RULES_FILE_BYTES_MAX,
    RuleSet,
    RuleSetError,
)

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "risk-rules.yaml"


def one_rule(when: Any, *, action: str = "review") -> dict[str, Any]:
    return {"version": "t", "rules": [{"id": "r", "when": when, "action": action, "reason": "x"}]}


def holds(when: Any, row: dict[str, float]) -> bool:
    return bool(RuleSet.from_document(one_rule(when)).evaluate(row))


def errors_of(document: Any) -> tuple[str, ...]:
    with pytest.raises(RuleSetError) as caught:
        RuleSet.from_document(document)
    assert caught.value.code == "invalid_rules"
    return caught.value.errors


def test_the_example_file_loads_and_reads_its_features() -> None:
    rules = RuleSet.load(EXAMPLE)
    assert rules.declared_version == "2026-12-handbook-1"
    prefix, digest = rules.version.split(":")
    assert prefix == rules.declared_version
    assert len(digest) == 12
    assert int(digest, 16) >= 0
    assert [r.id for r in rules.rules][:2] == ["large_amount", "risky_terminal"]
    assert rules.rules[0].action is Verdict.BLOCK
    assert "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW" in rules.features
    assert rules.score.review == 0.5
    assert rules.score.block == 0.9
    assert rules.score.anomaly_review is None


@pytest.mark.parametrize(
    ("op", "value", "x", "expected"),
    [
        (">", 10, 10.5, True),
        (">", 10, 10.0, False),
        (">=", 10, 10.0, True),
        (">=", 10, 9.99, False),
        ("<", 10, 9.0, True),
        ("<", 10, 10.0, False),
        ("<=", 10, 10.0, True),
        ("<=", 10, 10.01, False),
        ("==", 1, 1.0, True),
        ("==", 1, 0.0, False),
        ("!=", 1, 0.0, True),
        ("!=", 1, 1.0, False),
        ("in", [1, 3, 5.5], 5.5, True),
        ("in", [1, 3, 5.5], 3.0, True),
        ("in", [1, 3, 5.5], 2.0, False),
    ],
)
def test_every_operator(op: str, value: Any, x: float, expected: bool) -> None:
    assert holds({"feature": "f", "op": op, "value": value}, {"f": x}) is expected


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!=", "in"])
def test_a_missing_or_nan_feature_makes_every_comparison_false(op: str) -> None:
    value: Any = [1.0] if op == "in" else 1.0
    when = {"feature": "f", "op": op, "value": value}
    assert holds(when, {}) is False
    assert holds(when, {"f": math.nan}) is False
    other = {"feature": "f", "op": "!=" if op == "in" else op, "value": {"feature": "g"}}
    assert holds(other, {"f": 1.0}) is False
    assert holds(other, {"f": math.nan, "g": 2.0}) is False


def test_two_features_compared_with_a_factor() -> None:
    when = {"feature": "amount", "op": ">", "value": {"feature": "avg", "times": 3}}
    assert holds(when, {"amount": 31.0, "avg": 10.0})
    assert not holds(when, {"amount": 30.0, "avg": 10.0})
    plain = {"feature": "a", "op": "==", "value": {"feature": "b"}}
    assert holds(plain, {"a": 2.0, "b": 2.0})
    assert not holds(plain, {"a": 2.0, "b": 3.0})


def test_all_any_not() -> None:
    big = {"feature": "amount", "op": ">", "value": 100}
    night = {"feature": "night", "op": "==", "value": 1}
    new = {"feature": "new_payee", "op": "==", "value": 1}
    when = {
        "all": [big, {"any": [night, new]}, {"not": {"feature": "vip", "op": "==", "value": 1}}]
    }
    assert holds(when, {"amount": 101, "night": 1, "new_payee": 0, "vip": 0})
    assert holds(when, {"amount": 101, "night": 0, "new_payee": 1, "vip": 0})
    assert not holds(when, {"amount": 101, "night": 0, "new_payee": 0, "vip": 0})
    assert not holds(when, {"amount": 101, "night": 1, "new_payee": 1, "vip": 1})
    assert not holds(when, {"amount": 99, "night": 1, "new_payee": 1, "vip": 0})
    three = {"any": [big, night, new]}
    assert holds(three, {"new_payee": 1})
    assert not holds(three, {"amount": 1})
    assert holds({"all": [big, night, new]}, {"amount": 101, "night": 1, "new_payee": 1})


def test_evaluate_returns_the_hit_rules_in_file_order() -> None:
    document = {
        "version": "t",
        "rules": [
            {
                "id": f"r{i}",
                "when": {"feature": "x", "op": ">", "value": i},
                "action": "review",
                "reason": f"over {i}",
            }
            for i in range(5)
        ],
    }
    rules = RuleSet.from_document(document)
    assert [r.id for r in rules.evaluate({"x": 2.5})] == ["r0", "r1", "r2"]


def test_errors_name_the_rule_and_the_path_and_refuse_the_whole_file() -> None:
    text = """
version: v1
rules:
  - {id: a, when: {feature: x, op: ">", value: 1}, action: review, reason: fine}
  - {id: b, when: {feature: x, op: ">", value: 1}, action: review, reason: fine}
  - {id: c, when: {feature: x, op: ">", value: 1}, action: review, reason: fine}
  - id: night_burst
    when:
      all:
        - {feature: x, op: ">", value: 1}
        - {feature: x, op: "=>", value: 1}
    action: review
    reason: broken
"""
    with pytest.raises(RuleSetError) as caught:
        RuleSet.parse(text)
    assert caught.value.errors == (
        'rules[3].when.all[1].op: unknown operator "=>"; expected one of > >= < <= == != in'
        " (rule night_burst)",
    )
    assert str(caught.value).startswith("rules: rules[3].when.all[1].op")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "the file must hold a mapping, not a list"),
        ({"rules": []}, "version: is required"),
        ({"version": "", "rules": []}, "version: must be text"),
        ({"version": "v", "rules": [], "extra": 1}, "extra: unknown key"),
        ({"version": "v", "rules": {}}, "rules: must be a list"),
        (
            {"version": "v", "rules": [], "score": {"review": 0.9, "block": 0.5}},
            "score.review: 0.9 is over score.block (0.5)",
        ),
        (
            {"version": "v", "rules": [], "score": {"block": 1.5}},
            "score.block: 1.5 is not a probability",
        ),
        ({"version": "v", "rules": [], "score": {"reveiw": 0.5}}, "score.reveiw: unknown key"),
        (
            {"version": "v", "rules": [], "score": {"review": "high"}},
            'score.review: "high" is not a number',
        ),
        (
            one_rule({"feature": "x", "op": ">", "value": 1}, action="deny"),
            'rules[0].action: "deny" is not one of allow, review, block (rule r)',
        ),
        (
            one_rule({"feature": "x", "op": ">", "value": True}),
            "rules[0].when.value: true is not a number (a flag",
        ),
        (one_rule({"feature": "x", "op": ">", "value": "1e3"}), "YAML reads this as text"),
        (
            one_rule({"feature": "x", "op": ">", "value": math.inf}),
            "rules[0].when.value: inf is not a finite number",
        ),
        (
            one_rule({"feature": "x", "op": "in", "value": []}),
            "rules[0].when.value: `in` takes a list",
        ),
        (
            one_rule({"feature": "x", "op": "in", "value": [1, "a"]}),
            'rules[0].when.value[1]: "a" is not a number',
        ),
        (
            one_rule({"feature": "x y", "op": ">", "value": 1}),
            'rules[0].when.feature: "x y" is not a feature name',
        ),
        (one_rule({"feature": "x", "op": ">"}), "rules[0].when.value: is required"),
        (
            one_rule({"feature": "x", "op": ">", "value": 1, "else": 2}),
            "rules[0].when.else: unknown key",
        ),
        (one_rule({"all": []}), "rules[0].when.all: must be a non-empty list"),
        (
            one_rule({"all": [{"feature": "x", "op": ">", "value": 1}], "any": []}),
            "rules[0].when: 'all' stands alone",
        ),
        (one_rule({"not": 3}), "rules[0].when.not: a condition must be a mapping, not int"),
        (
            one_rule({"feature": "x", "op": ">", "value": {"feature": "y", "times": "2"}}),
            'rules[0].when.value.times: "2" is not a number',
        ),
        (
            {
                "version": "v",
                "rules": [
                    {
                        "id": "Bad-Id",
                        "when": {"feature": "x", "op": ">", "value": 1},
                        "action": "review",
                        "reason": "x",
                    }
                ],
            },
            'rules[0].id: "Bad-Id" is not a snake_case id',
        ),
        (
            {"version": "v", "rules": [{"id": "a", "action": "review", "reason": ""}]},
            "rules[0].reason: must be text",
        ),
        (
            {"version": "v", "rules": [{"id": "a", "action": "review", "reason": "r"}]},
            "rules[0].when: is required (rule a)",
        ),
        ({"version": "v", "rules": ["a"]}, "rules[0]: a rule must be a mapping, not text"),
    ],
)
def test_invalid_documents_are_refused_with_a_path(document: Any, expected: str) -> None:
    errors = errors_of(document)
    assert any(expected in error for error in errors), errors


def test_duplicate_rule_ids_are_refused() -> None:
    rule = {
        "id": "a",
        "when": {"feature": "x", "op": ">", "value": 1},
        "action": "review",
        "reason": "r",
    }
    assert errors_of({"version": "v", "rules": [rule, rule]}) == (
        "rules[1].id: 'a' repeats rules[0]",
    )


def test_every_error_of_a_file_is_reported() -> None:
    bad = {
        "id": "a",
        "when": {"feature": "x", "op": "=>", "value": 1},
        "action": "nope",
        "reason": "r",
    }
    errors = errors_of({"version": "v", "rules": [bad, {**bad, "id": "b"}]})
    assert len(errors) == 4


def test_depth_and_size_are_bounded() -> None:
    leaf: Any = {"feature": "x", "op": ">", "value": 1}
    deep = leaf
    for _ in range(CONDITION_DEPTH_MAX):
        deep = {"not": deep}
    assert any(
        f"nested over {CONDITION_DEPTH_MAX} levels deep" in e for e in errors_of(one_rule(deep))
    )
    shallow = leaf
    for _ in range(CONDITION_DEPTH_MAX - 1):
        shallow = {"not": shallow}
    assert holds(shallow, {"x": 0.0}) is (CONDITION_DEPTH_MAX % 2 == 0)
    wide = {"any": [leaf] * CONDITION_NODES_MAX}
    assert any(f"over {CONDITION_NODES_MAX} nodes" in e for e in errors_of(one_rule(wide)))
    assert holds({"any": [leaf] * (CONDITION_NODES_MAX - 1)}, {"x": 2.0})


def test_yaml_aliases_cannot_blow_up_a_condition() -> None:
    """Aliases share one object, so a tree of 2^30 leaves is a few lines of YAML: walking it
    stops at the node bound."""
    text = "version: v\nrules:\n  - id: bomb\n    action: review\n    reason: r\n    when: "
    tree = '&a0 {any: [{feature: x, op: ">", value: 1}]}'
    for level in range(1, 31):
        tree = f"&a{level} {{any: [{tree}, *a{level - 1}]}}"
    text += tree
    errors = errors_of_text(text + "\n")
    assert any(f"over {CONDITION_NODES_MAX} nodes" in e or "levels deep" in e for e in errors)
    assert len(errors) <= CONDITION_NODES_MAX + 1


def errors_of_text(text: str) -> tuple[str, ...]:
    with pytest.raises(RuleSetError) as caught:
        RuleSet.parse(text)
    return caught.value.errors


def test_a_file_nested_past_the_parsers_stack_is_refused_not_crashed() -> None:
    deep = 20_000
    yaml_text = "version: v\nrules:\n  - id: r\n    action: review\n    reason: r\n    when: "
    yaml_text += "{not: " * deep + '{feature: x, op: ">", value: 1}' + "}" * deep + "\n"
    assert errors_of_text(yaml_text) == ("nested too deeply to read",)
    json_text = '{"version": "v", "rules": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(RuleSetError, match="nested too deeply"):
        RuleSet.parse(json_text, json_only=True)


def test_yaml_and_json_syntax_errors_and_duplicate_keys() -> None:
    assert "not YAML" in errors_of_text("version: [1\n")[0]
    duplicate = "version: v\nversion: w\nrules: []\n"
    assert errors_of_text(duplicate)[0].startswith("not YAML: duplicate key 'version' at line 2")
    with pytest.raises(RuleSetError, match="not JSON"):
        RuleSet.parse("{", json_only=True)


_RULE = "version: v\nrules:\n  - id: a\n    action: {action}\n    reason: r\n    when: {when}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # An action that is a list (unhashable: it crashed the set lookup).
        (_RULE.format(action="[block]", when='{feature: x, op: ">", value: 1}'), "action"),
        # A list as a mapping's key, at the top and inside a condition.
        ("? [a, b]\n: 1\n", "key must be text"),
        (_RULE.format(action="block", when="{[x]: 2}"), "key must be text"),
        # An alias that contains itself.
        ("version: v\nrules:\n  - id: &a [*a]\n    action: block\n    reason: r\n", "id"),
        # An integer of 400 digits where a number is expected.
        (
            _RULE.format(action="block", when='{feature: x, op: ">", value: ' + "9" * 400 + "}"),
            "not a finite number",
        ),
    ],
)
def test_hostile_shapes_are_refused_in_words_not_a_traceback(text: str, expected: str) -> None:
    errors = errors_of_text(text)
    assert any(expected in e for e in errors), errors


def test_a_json_integer_past_the_parsers_digits_is_refused() -> None:
    text = '{"version": "v", "rules": [{"id": "a", "when": {"feature": "x", "op": ">", '
    text += '"value": ' + "9" * 5000 + '}, "action": "block", "reason": "r"}]}'
    with pytest.raises(RuleSetError, match="number too long"):
        RuleSet.parse(text, json_only=True)


def test_the_version_hashes_the_canonical_set() -> None:
    yaml_text = """
# a comment
version: v1
score: {block: 0.9, review: 0.5}
rules:
  - {reason: big, id: big, action: block, when: {value: 100, feature: amount, op: ">"}}
"""
    json_text = json.dumps(
        {
            "version": "v1",
            "rules": [
                {
                    "id": "big",
                    "when": {"feature": "amount", "op": ">", "value": 100.0},
                    "action": "block",
                    "reason": "big",
                }
            ],
            "score": {"review": 0.5, "block": 0.9},
        },
        indent=4,
    )
    a = RuleSet.parse(yaml_text)
    b = RuleSet.parse(json_text, json_only=True)
    assert a.version == b.version
    assert a.version.startswith("v1:")
    assert a.document() == b.document()
    edited = RuleSet.parse(yaml_text.replace("value: 100", "value: 101"))
    assert edited.declared_version == a.declared_version
    assert edited.version != a.version
    reordered = RuleSet.parse(yaml_text.replace("review: 0.5", "review: 0.6"))
    assert reordered.version != a.version
    in_sets = [
        RuleSet.from_document(one_rule({"feature": "x", "op": "in", "value": v}))
        for v in ([3, 1, 1], [1.0, 3.0])
    ]
    assert in_sets[0].version == in_sets[1].version  # a set's order and repeats do not matter


def test_check_refuses_features_the_engine_does_not_compute() -> None:
    rules = RuleSet.from_document(
        one_rule(
            {
                "all": [
                    {"feature": "amount", "op": ">", "value": 1},
                    {"feature": "amount", "op": ">", "value": {"feature": "avg_7d"}},
                ]
            }
        )
    )
    rules.check(["amount", "avg_7d", "other"])
    with pytest.raises(RuleSetError, match=r"rules\[0\] \(r\): unknown feature 'avg_7d'"):
        rules.check(["amount"])


def test_load_reads_json_and_yaml_files_and_refuses_unreadable_ones(tmp_path: Path) -> None:
    as_json = tmp_path / "rules.json"
    as_json.write_text(json.dumps(one_rule({"feature": "x", "op": ">", "value": 1})))
    assert RuleSet.load(as_json).rules[0].id == "r"
    with pytest.raises(RuleSetError, match=r"missing.yaml: cannot read the file"):
        RuleSet.load(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("#" * (RULES_FILE_BYTES_MAX + 1))
    with pytest.raises(RuleSetError, match="bytes, over"):
        RuleSet.load(big)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: v\nrules:\n"
        "  - {id: a, when: {feature: x, op: '=>', value: 1}, action: review, reason: r}\n"
    )
    with pytest.raises(RuleSetError, match=r"^bad.yaml: rules\[0\].when.op: unknown operator"):
        RuleSet.load(bad)
