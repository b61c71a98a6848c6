"""Deterministic split of one dataset into T curriculum subsets (CurES Sec. 4.3, following GVM).

The paper trains T=15 iterations, each on its own ~10k-prompt subset of Numina-Math. GVM/CurES used the
pre-split Hub datasets ``ScaleML-RLHF/numina_math_{1..15}``; for any other single file this module
assigns every row to one of T subsets:

1. each row gets the key ``sha256(f"{seed}:{source_id}")``: a pseudo-random order that depends only on
   the seed and the row's stable id (not on numpy's RNG stream, which may change between versions);
2. rows are ranked by key (ties, i.e. duplicate ids, by input position) and cut into T blocks with
   ``numpy.array_split`` sizes: the first ``N mod T`` subsets get one extra row.

The prepared file lists the subsets one after the other (subset 1 first), each in input order, so
``cures.schedule.split=contiguous`` (which cuts the file with the same ``array_split`` sizes) sees
exactly these subsets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["subset_sizes", "assign_subsets"]


def subset_sizes(num_rows: int, num_subsets: int) -> list[int]:
    """Sizes of ``num_subsets`` near-equal blocks of ``num_rows`` (``numpy.array_split`` rule).

    Raises:
        ValueError: If ``num_subsets < 1`` or there are fewer rows than subsets.

    Example:
        >>> subset_sizes(10, 3)
        [4, 3, 3]
    """
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    if num_rows < num_subsets:
        raise ValueError(f"cannot split {num_rows} rows into {num_subsets} non-empty subsets; lower --num-subsets")
    base, extra = divmod(num_rows, num_subsets)
    return [base + (1 if k < extra else 0) for k in range(num_subsets)]


def assign_subsets(source_ids: Sequence[str], num_subsets: int, *, seed: int) -> list[int]:
    """Assign each row to a 1-based subset, deterministically from its id and ``seed``.

    Args:
        source_ids: Stable id of every row, in input order, shape ``(num_rows,)``.
        num_subsets: T, the number of subsets.
        seed: Seed of the pseudo-random assignment.

    Returns:
        Subset number in ``1 .. num_subsets`` for each row; subset sizes follow :func:`subset_sizes`.

    Raises:
        ValueError: If ``num_subsets < 1`` or there are fewer rows than subsets.

    Example:
        >>> subsets = assign_subsets([f"row{i}" for i in range(7)], 3, seed=0)
        >>> sorted(subsets.count(k) for k in (1, 2, 3))
        [2, 2, 3]
    """
    sizes = subset_sizes(len(source_ids), num_subsets)
    keys = [hashlib.sha256(f"{seed}:{source_id}".encode()).digest() for source_id in source_ids]
    order = sorted(range(len(source_ids)), key=lambda i: (keys[i], i))
    assignment = [0] * len(source_ids)
    start = 0
    for subset, size in enumerate(sizes, start=1):
        for i in order[start : start + size]:
            assignment[i] = subset
        start += size
    return assignment
