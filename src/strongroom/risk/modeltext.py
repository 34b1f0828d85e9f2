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
_KEY = re.compile(r"[a-z_]+")
# The keys of a tree LightGBM 4 writes (a linear tree's are refused with it).
_TREE_KEYS: Final = frozenset(
    {
        "num_leaves",
        "num_cat",
        "split_feature",
        "split_gain",
        "threshold",
        "decision_type",
        "left_child",
        "right_child",
        "leaf_value",
        "leaf_weight",
        "leaf_count",
        "internal_value",
        "internal_weight",
        "internal_count",
        "cat_boundaries",
        "cat_threshold",
        "is_linear",
        "shrinkage",
    }
)
_END = "end of trees"
# Bits of decision_type LightGBM uses: 1 categorical, 2 default left, 12 the missing type.
_DECISION_BITS: Final = 0b1111
_CATEGORICAL: Final = 1

T = TypeVar("T")


class ModelTextError(ValueError):
    """What is wrong with a model text, in words for `invalid_model_file`."""


def _fields(lines: list[str], where: str, allowed: frozenset[str] | None) -> dict[str, str]:
    """`key=value` lines read strictly, as LightGBM reads them and no other way: a key as
    written (LightGBM trims none: `left_child =` is another key to it), never twice (which of
    two would it take?), and, where `allowed` is given, one of those."""
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or not _KEY.fullmatch(key) or (allowed is not None and key not in allowed):
            raise ModelTextError(f"{where}: a line that is not one of its key=value lines")
        if key in out:
            raise ModelTextError(f"{where}: the key {key} twice")
        out[key] = value
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
    `n_features` features whose every tree has a sound shape, laid out as LightGBM writes it:
    a header, then each `Tree=k` block (its key=value lines, then blank lines only), then one
    `end of trees` line; nothing a second reader could take differently."""
    if text.count(_END) != 1 or text.count("Tree=") != len(_TREE_START.findall(text)):
        raise ModelTextError("the model text's trees are not laid out as LightGBM writes them")
    lines = text.split("\n")
    try:
        end = lines.index(_END)
    except ValueError:
        raise ModelTextError("the model text has no `end of trees` line") from None
    starts = [i for i in range(end) if lines[i].startswith("Tree=")]
    if not starts:
        raise ModelTextError("the model text has no trees")
    if len(starts) > TREES_MAX:
        raise ModelTextError(f"the model has more than {TREES_MAX} trees")
    if lines[0] != "tree":
        raise ModelTextError("the model text does not begin as LightGBM's")
    header = _fields([line for line in lines[1 : starts[0]] if line], "the header", None)
    if header.get("num_class") != "1" or header.get("num_tree_per_iteration") != "1":
        raise ModelTextError("the model text is not a binary model's")
    if header.get("max_feature_idx") != str(n_features - 1):
        raise ModelTextError("the model text and the feature list disagree")
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
        actual = [sum(len(line) + 1 for line in lines[a:b]) for a, b in itertools.pairwise(bounds)]
        if given != actual:
            raise ModelTextError("the model's tree_sizes do not match its trees")
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        block = lines[a:b]
        if block[0] != f"Tree={k}":
            raise ModelTextError(f"tree {k} is out of order")
        body = block[1:]
        while body and not body[-1]:
            body.pop()  # the blank lines that end a tree
        # A blank line inside a tree ends it for LightGBM, which then reads the rest as
        # something else: refused.
        _check_tree(_fields(body, f"tree {k}", _TREE_KEYS), n_features)


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
