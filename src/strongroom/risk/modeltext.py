"""A LightGBM model text checked before LightGBM reads it.

LightGBM's own loader trusts the text: a child index pointing back up its tree loops until the
process dies (SIGSEGV), a split on a feature past the model's aborts it (SIGABRT), and so do a
leaf count that disagrees with its arrays and a `tree_sizes` that points past a tree. An
artefact's version is a digest of its content, not a signature, so anyone who can write a file
can make one that passes it. The shape every tree must have is checked here first, in Python,
and a text that fails is refused (`ModelFileError`, `invalid_model_file`) before it reaches
native code: what a model trained by LightGBM 4 (`risk train`) always passes.

Per tree: `num_leaves` N, then N - 1 splits, each with a feature inside the model, a decision
type, a threshold (for a categorical split, the index of its category set), and two children:
an internal node after its parent (>= 0) or a leaf (~leaf), each node and each leaf reached
exactly once from the root; N finite leaf values; category sets whose boundaries rise from 0
to the length of their bitsets. No linear trees. `tree_sizes`, when present, must be each
tree's exact length.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Final, TypeVar

LEAVES_MAX: Final = 131_072  # LightGBM's own bound on num_leaves
TREES_MAX: Final = 100_000
_TREE_START = re.compile(r"(?m)^Tree=")
_END = "end of trees"
# Bits of decision_type LightGBM uses: 1 categorical, 2 default left, 12 the missing type.
_DECISION_BITS: Final = 0b1111
_CATEGORICAL: Final = 1

T = TypeVar("T")


class ModelTextError(ValueError):
    """What is wrong with a model text, in words for `invalid_model_file`."""


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _numbers(fields: dict[str, str], key: str, count: int, parse: Callable[[str], T]) -> list[T]:
    raw = fields.get(key, "")
    parts = raw.split() if raw else []
    if len(parts) != count:
        raise ModelTextError(f"a tree's {key} has {len(parts)} values, not {count}")
    try:
        return [parse(p) for p in parts]
    except (ValueError, OverflowError):
        raise ModelTextError(f"a tree's {key} holds a value that is no number") from None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def check_model_text(text: str, n_features: int) -> None:
    """Raises ModelTextError unless `text` is the model text of a binary LightGBM model of
    `n_features` features whose every tree has a sound shape."""
    first = _TREE_START.search(text)
    end = text.find(_END)
    if first is None or end < first.start():
        raise ModelTextError("the model text has no trees")
    header = _fields(text[: first.start()])
    if header.get("num_class") != "1" or header.get("num_tree_per_iteration") != "1":
        raise ModelTextError("the model text is not a binary model's")
    if header.get("max_feature_idx") != str(n_features - 1):
        raise ModelTextError("the model text and the feature list disagree")
    starts = [m.start() for m in _TREE_START.finditer(text, first.start(), end)]
    if len(starts) > TREES_MAX:
        raise ModelTextError(f"the model has more than {TREES_MAX} trees")
    bounds = [*starts, end]
    sizes = header.get("tree_sizes")
    if sizes is not None:
        # LightGBM parses each tree at the offset these give, in bytes (the text is ASCII).
        if not text.isascii():
            raise ModelTextError("the model text is not ASCII")
        try:
            given = [int(s) for s in sizes.split()]
        except ValueError:
            raise ModelTextError("the model's tree_sizes are no numbers") from None
        if given != [b - a for a, b in itertools.pairwise(bounds)]:
            raise ModelTextError("the model's tree_sizes do not match its trees")
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        block = text[a:b]
        if block.splitlines()[0].strip() != f"Tree={k}":
            raise ModelTextError(f"tree {k} is out of order")
        _check_tree(_fields(block), n_features)


def _check_tree(fields: dict[str, str], n_features: int) -> None:
    try:
        leaves = int(fields.get("num_leaves", ""))
        categories = int(fields.get("num_cat", "0"))
    except ValueError:
        raise ModelTextError("a tree's num_leaves or num_cat is no number") from None
    if not 1 <= leaves <= LEAVES_MAX or not 0 <= categories < leaves:
        raise ModelTextError("a tree's num_leaves or num_cat is out of range")
    if fields.get("is_linear", "0") != "0":
        raise ModelTextError("linear trees are not supported")
    _numbers(fields, "leaf_value", leaves, _finite)
    if leaves == 1:
        return
    splits = leaves - 1
    features = _numbers(fields, "split_feature", splits, int)
    if any(not 0 <= f < n_features for f in features):
        raise ModelTextError("a tree splits on a feature the model does not have")
    kinds = _numbers(fields, "decision_type", splits, int)
    if any(not 0 <= d <= _DECISION_BITS for d in kinds):
        raise ModelTextError("a tree's decision_type is out of range")
    thresholds = _numbers(fields, "threshold", splits, _finite)
    if categories:
        bounds = _numbers(fields, "cat_boundaries", categories + 1, int)
        if bounds[0] != 0 or any(b < a for a, b in itertools.pairwise(bounds)):
            raise ModelTextError("a tree's cat_boundaries do not rise from 0")
        _numbers(fields, "cat_threshold", bounds[-1], int)
    for kind, threshold in zip(kinds, thresholds, strict=True):
        if kind & _CATEGORICAL and (not threshold.is_integer() or not 0 <= threshold < categories):
            raise ModelTextError("a categorical split names a category set the tree lacks")
    left = _numbers(fields, "left_child", splits, int)
    right = _numbers(fields, "right_child", splits, int)
    nodes_seen = [False] * splits
    leaves_seen = [False] * leaves
    nodes_seen[0] = True  # the root
    for parent in range(splits):
        for child in (left[parent], right[parent]):
            if child >= 0:
                # LightGBM appends a node when it splits a leaf: a child comes after its parent,
                # so no path loops back.
                if not parent < child < splits or nodes_seen[child]:
                    raise ModelTextError("a tree's child points outside its tree or back up it")
                nodes_seen[child] = True
            else:
                leaf = ~child
                if not 0 <= leaf < leaves or leaves_seen[leaf]:
                    raise ModelTextError("a tree's leaf index is out of range or repeated")
                leaves_seen[leaf] = True
    if not all(nodes_seen) or not all(leaves_seen):
        raise ModelTextError("a tree has a node or a leaf that no split reaches")
