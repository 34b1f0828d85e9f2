"""A model file's trees are checked before LightGBM reads them: each malformation that crashes
LightGBM's own loader (a child pointing back up its tree: SIGSEGV; a split on a feature past the
model's, a leaf count at odds with its arrays, a wrong tree_sizes: SIGABRT) is refused as
`invalid_model_file`, whatever the file's version says; a trained model passes. The crashes
themselves are not reproduced here (they would kill the test process)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.risk.artefact import ModelArtifact, ModelFileError, _content_version
from strongroom.risk.modeltext import ModelTextError, check_model_text
from strongroom.risk.trainer import train
from tests.support.synthetic_fraud import synthetic_fraud


@pytest.fixture(scope="module")
def model() -> ModelArtifact:
    frame = synthetic_fraud(11, rows=3_000, columns=6, positive_rate=0.04, categorical=2)
    return train(frame, "is_fraud", "at", "payment_id", budget_s=3, threads=1, seed=5).artefact


def _tree_sizes_fixed(text: str) -> str:
    """`text` with its tree_sizes made true again, so that only the edit under test is wrong."""
    starts = [m.start() for m in re.finditer(r"(?m)^Tree=", text)]
    bounds = [*starts, text.index("end of trees")]
    sizes = " ".join(str(b - a) for a, b in itertools.pairwise(bounds))
    return re.sub(r"(?m)^tree_sizes=.*$", f"tree_sizes={sizes}", text, count=1)


def _edit_first_tree(text: str, key: str, change: Callable[[list[str]], list[str]]) -> str:
    pattern = re.compile(rf"(?m)^{key}=(.*)$")
    found = pattern.search(text, text.index("Tree=0"))
    assert found is not None, key
    values = change(found.group(1).split())
    edited = text[: found.start()] + f"{key}={' '.join(values)}" + text[found.end() :]
    return _tree_sizes_fixed(edited)


def _set(index: int, value: str) -> Callable[[list[str]], list[str]]:
    def change(values: list[str]) -> list[str]:
        values[index] = value
        return values

    return change


def test_a_trained_model_passes(model: ModelArtifact) -> None:
    check_model_text(model.model_text, len(model.features))
    assert _tree_sizes_fixed(model.model_text) == model.model_text


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ("left_child", _set(0, "0"), "back up"),  # a loop: LightGBM walks it until it crashes
        ("right_child", _set(0, "12345"), "outside its tree"),
        ("split_feature", _set(0, "99999"), "feature the model does not have"),
        ("num_leaves", lambda v: ["100000"], "values, not"),
        ("leaf_value", _set(0, "nan"), "no number"),
        ("threshold", _set(0, "inf"), "no number"),
        ("decision_type", _set(0, "64"), "decision_type"),
        ("is_linear", lambda v: ["1"], "linear"),
    ],
)
def test_a_malformed_tree_is_refused(
    model: ModelArtifact, key: str, change: Callable[[list[str]], list[str]], message: str
) -> None:
    text = _edit_first_tree(model.model_text, key, change)
    with pytest.raises(ModelTextError, match=message):
        check_model_text(text, len(model.features))


def test_a_leaf_reached_twice_and_a_leaf_never_reached_are_refused(model: ModelArtifact) -> None:
    text = model.model_text
    tree = text[text.index("Tree=0") :]
    left = re.search(r"(?m)^left_child=(.*)$", tree)
    right = re.search(r"(?m)^right_child=(.*)$", tree)
    assert left is not None
    assert right is not None
    leaf = next(v for v in left.group(1).split() + right.group(1).split() if int(v) < 0)
    for key in ("left_child", "right_child"):
        values = re.search(rf"(?m)^{key}=(.*)$", tree).group(1).split()  # type: ignore[union-attr]
        at = next((i for i, v in enumerate(values) if int(v) < 0 and v != leaf), None)
        if at is not None:
            edited = _edit_first_tree(text, key, _set(at, leaf))
            with pytest.raises(ModelTextError, match="repeated"):
                check_model_text(edited, len(model.features))
            return
    pytest.fail("no second leaf to repeat")


def test_tree_sizes_that_do_not_match_and_another_feature_count_are_refused(
    model: ModelArtifact,
) -> None:
    text = model.model_text
    wrong = re.sub(r"(?m)^tree_sizes=(\d+)", lambda m: f"tree_sizes={int(m[1]) + 7}", text)
    with pytest.raises(ModelTextError, match="tree_sizes"):
        check_model_text(wrong, len(model.features))
    with pytest.raises(ModelTextError, match="feature list"):
        check_model_text(text, len(model.features) + 1)
    with pytest.raises(ModelTextError, match="not laid out"):
        check_model_text(text[: text.index("Tree=0")], len(model.features))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Found by the second attack round: each passed the check and LightGBM read another
        # tree than the one checked (and crashed on it, or scored with one tree of 100).
        (lambda t: t.replace("\nleft_child=", "\nleft_child=0 0\nleft_child =", 1), "key=value"),
        (lambda t: t.replace("\nleft_child=", "\nleft_child=0 0\nleft_child=", 1), "twice"),
        (lambda t: t.replace("\nnum_cat=", "\n\nnum_cat=", 1), "key=value"),
        (lambda t: t.replace("\nnum_cat=", "\nnote=end of trees\nnum_cat=", 1), "laid out"),
        (lambda t: t.replace("\nnum_cat=", "\nnote=x\nnum_cat=", 1), "key=value"),
        (lambda t: t.replace("\nnum_cat=", "\nsplit=Tree=9\nnum_cat=", 1), "laid out"),
    ],
)
def test_a_tree_another_reader_could_take_differently_is_refused(
    model: ModelArtifact, edit: Callable[[str], str], message: str
) -> None:
    with pytest.raises(ModelTextError, match=message):
        check_model_text(_tree_sizes_fixed(edit(model.model_text)), len(model.features))
    without_sizes = re.sub(r"(?m)^tree_sizes=.*\n", "", edit(model.model_text), count=1)
    with pytest.raises(ModelTextError):
        check_model_text(without_sizes, len(model.features))


def test_a_categorical_split_naming_a_missing_category_set_is_refused(
    model: ModelArtifact,
) -> None:
    text = model.model_text
    for block in re.finditer(r"(?ms)^Tree=(\d+)$.*?(?=^Tree=|^end of trees)", text):
        kinds = re.search(r"(?m)^decision_type=(.*)$", block.group(0))
        cats = re.search(r"(?m)^num_cat=(\d+)$", block.group(0))
        assert kinds is not None
        assert cats is not None
        split = next((i for i, d in enumerate(kinds.group(1).split()) if int(d) & 1), None)
        if split is None:
            continue
        threshold = re.compile(r"(?m)^threshold=(.*)$")
        found = threshold.search(text, block.start())
        assert found is not None
        values = found.group(1).split()
        values[split] = cats.group(1)  # one past the last category set
        edited = text[: found.start()] + f"threshold={' '.join(values)}" + text[found.end() :]
        with pytest.raises(ModelTextError, match="category set"):
            check_model_text(_tree_sizes_fixed(edited), len(model.features))
        return
    pytest.skip("this model made no categorical split")


def _file_with(model: ModelArtifact, tmp_path: Path, edit: Callable[[dict], None]) -> Path:  # type: ignore[type-arg]
    """The model's file, edited, with a version recomputed to match (an unkeyed digest)."""
    path = tmp_path / "model.json"
    model.save(path)
    data = json.loads(path.read_text())
    edit(data)
    content = {k: data[k] for k in ("model", "features", "calibrator", "anomaly")}
    data["version"] = _content_version(content)
    path.write_text(json.dumps(data))
    return path


def test_a_file_with_a_matching_version_is_still_refused(
    model: ModelArtifact, tmp_path: Path
) -> None:
    def loop(data: dict) -> None:  # type: ignore[type-arg]
        data["model"] = _edit_first_tree(data["model"], "left_child", _set(0, "0"))

    with pytest.raises(ModelFileError, match="trees are unsound"):
        ModelArtifact.load(_file_with(model, tmp_path, loop))

    def upside_down(data: dict) -> None:  # type: ignore[type-arg]
        data["calibrator"]["a"] = -abs(data["calibrator"]["a"])

    with pytest.raises(ModelFileError, match="slope must be positive"):
        ModelArtifact.load(_file_with(model, tmp_path, upside_down))
    assert ModelArtifact.load(_file_with(model, tmp_path, lambda d: None)).version == model.version
