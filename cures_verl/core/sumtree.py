"""A vectorised sum tree: weighted draws in O(k log N) and weight updates in O(k log N).

The CurES sampler draws m prompts per step from a softmax over the whole dataset (CurES Eq. 14) and
then changes the weights of only the prompts it observed. Recomputing a cumulative sum over a million
prompts every step costs milliseconds; the tree keeps every step's cost proportional to the number of
prompts touched, so a step on a 1,000,000-prompt dataset stays well under the 5 ms goal.

Layout: a complete binary tree over ``capacity = 2**depth >= size`` leaves stored in one float64 array
of length ``2 * capacity``; node ``j`` has children ``2j`` and ``2j + 1``, leaves start at ``capacity``,
the root is node 1. Parents are recomputed from their children (never by adding differences), so
rounding errors do not accumulate across updates.
"""

from __future__ import annotations

import numpy as np

from cures_verl.core._typing import FloatArray, IntArray
from cures_verl.core.grouping import run_starts

__all__ = ["SumTree"]


class SumTree:
    """Non-negative weights with fast proportional sampling.

    Args:
        size: Number of leaves (prompts).

    Example:
        >>> tree = SumTree(4)
        >>> tree.rebuild(np.array([1.0, 0.0, 3.0, 0.0]))
        >>> tree.total
        4.0
        >>> tree.find(np.array([0.5, 1.5, 3.9])).tolist()
        [0, 2, 2]
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"SumTree size must be >= 1, got {size}")
        self.size = int(size)
        self.depth = max(1, int(np.ceil(np.log2(self.size))))
        self.capacity = 1 << self.depth
        self.nodes: FloatArray = np.zeros(2 * self.capacity)

    @property
    def total(self) -> float:
        """Sum of all weights."""
        return float(self.nodes[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the tree."""
        return int(self.nodes.nbytes)

    def weights(self, indices: IntArray | None = None) -> FloatArray:
        """Leaf weights (a copy), shape ``(size,)`` or ``(len(indices),)``."""
        leaves = self.nodes[self.capacity : self.capacity + self.size]
        return leaves.copy() if indices is None else leaves[indices]

    def rebuild(self, weights: FloatArray) -> None:
        """Set every weight at once, O(N).

        Raises:
            ValueError: If ``weights`` has the wrong shape or a negative or non-finite entry.
        """
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (self.size,):
            raise ValueError(f"weights must have shape ({self.size},), got {weights.shape}")
        if not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError("weights must be finite and >= 0")
        self.nodes[:] = 0.0
        self.nodes[self.capacity : self.capacity + self.size] = weights
        # level by level: parents [cap/2, cap) = pairwise sums of children [cap, 2cap)
        start = self.capacity
        while start > 1:
            children = self.nodes[start : 2 * start]
            self.nodes[start // 2 : start] = children[0::2] + children[1::2]
            start //= 2

    def update(self, indices: IntArray, weights: FloatArray) -> None:
        """Set the weights of ``indices`` (repeats allowed: the last value wins), O(k log N).

        Raises:
            ValueError: On shape mismatch, out-of-range indices, or negative/non-finite weights.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if indices.shape != weights.shape:
            raise ValueError(f"indices and weights differ in length: {indices.size} vs {weights.size}")
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.size:
            raise ValueError(f"indices must lie in [0, {self.size})")
        if not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError("weights must be finite and >= 0")
        node = indices + self.capacity
        self.nodes[node] = weights
        # sorted indices keep their parents sorted: repeated parents are then dropped level by level
        ordered = bool(np.all(indices[1:] >= indices[:-1]))
        level = self.capacity  # first node of the level being recomputed (= its number of nodes)
        for _ in range(self.depth):
            level >>= 1
            if level <= node.size:
                # the levels from here up have no more nodes than there are updates: recomputing them whole
                # (contiguous pairwise sums, as rebuild does) is cheaper than gathering the touched ones
                while level >= 1:
                    children = self.nodes[2 * level : 4 * level]
                    self.nodes[level : 2 * level] = children[0::2] + children[1::2]
                    level >>= 1
                return
            node = node >> 1
            if ordered and node.size > 1:
                node = node[run_starts(node)]
            # (unsorted input) duplicates in `node` write the same value twice, which is harmless
            left = 2 * node
            self.nodes[node] = self.nodes[left] + self.nodes[left + 1]

    def find(self, targets: FloatArray) -> IntArray:
        """Leaf index whose cumulative-weight interval contains each target in ``[0, total)``.

        A target drawn uniformly from ``[0, total)`` selects leaf i with probability weight_i / total.
        Rounding can send a target landing on the very end of the range to a zero-weight leaf; callers
        that need positive weights check the result (see ``draw_distinct``).
        """
        targets = np.array(targets, dtype=np.float64).reshape(-1)
        node = np.ones(targets.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self.nodes[left]
            go_right = targets >= left_sum
            np.subtract(targets, left_sum, out=targets, where=go_right)
            node = left + go_right
        return np.minimum(node - self.capacity, self.size - 1)
