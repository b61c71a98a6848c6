"""Array aliases shared by the core modules (shapes are given in docstrings)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

__all__ = ["FloatArray", "IntArray", "BoolArray"]
