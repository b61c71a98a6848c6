"""Scoring responses with a verl-style reward function, and the pass@1 / avg@k aggregation.

The scorer has verl's ``custom_reward_function`` signature, called with keyword arguments as verl's
reward manager does: ``compute_score(data_source=..., solution_str=..., ground_truth=...,
extra_info=...)``. The default is ``cures_verl.reward.math_verify:compute_score`` (the training
reward), so evaluation and training judge answers identically.

A scorer may return a number or a dict. The per-sample accuracy is the dict's ``acc`` if present,
else its ``score`` (or the number itself), and must lie in [0, 1]. Other numeric keys of the dict
(e.g. ``pred_parsed``) are averaged and reported next to the accuracy.

Aggregation (CurES Table 1): with n samples per problem, a problem's accuracy is the mean over its
samples, and the benchmark score is the mean over problems, in percent. With n = 1 this is pass@1;
with n = 16 it is the paper's avg@16. We also report the standard error over problems.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Scorer", "DEFAULT_SCORER", "load_scorer", "sample_accuracy", "BenchmarkScore", "aggregate"]

Scorer = Callable[..., Any]
"""``(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float | dict``."""

DEFAULT_SCORER = "cures_verl.reward.math_verify:compute_score"


def load_scorer(spec: str = DEFAULT_SCORER) -> Scorer:
    """Load a scorer from ``"package.module:function"`` or ``"path/to/file.py:function"``.

    Raises:
        ValueError: If ``spec`` has no ``:function`` part, or the attribute is not callable.
        ImportError: If the module or file cannot be imported (the message names the spec).
    """
    module_name, sep, function = spec.rpartition(":")
    if not sep or not module_name or not function:
        raise ValueError(f"scorer {spec!r} must look like 'package.module:function' or 'file.py:function'")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ImportError(f"scorer file {path} does not exist (scorer spec {spec!r})")
        unique = f"_cures_scorer_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(unique, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import scorer file {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[unique] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(
                f"cannot import scorer module {module_name!r} ({exc}); install its dependencies "
                "(e.g. pip install -e '.[math]' for math-verify) or pass --scorer"
            ) from exc
    scorer = getattr(module, function, None)
    if not callable(scorer):
        raise ValueError(f"scorer {spec!r}: {module_name} has no callable {function!r}")
    return scorer  # type: ignore[no-any-return]


def sample_accuracy(result: Any) -> tuple[float, dict[str, float]]:
    """Return ``(accuracy, other numeric fields)`` from one scorer result.

    Raises:
        ValueError: If the result has no ``acc``/``score``, or the accuracy is outside [0, 1].

    Example:
        >>> sample_accuracy({"score": 1.0, "acc": 1.0, "pred_parsed": 1.0})
        (1.0, {'pred_parsed': 1.0})
        >>> sample_accuracy(0.0)
        (0.0, {})
    """
    extras: dict[str, float] = {}
    if isinstance(result, Mapping):
        if "acc" in result:
            value = result["acc"]
        elif "score" in result:
            value = result["score"]
        else:
            raise ValueError(f"scorer returned a dict without 'acc' or 'score': {sorted(result)}")
        for key, item in result.items():
            if key in ("acc", "score") or isinstance(item, bool) or not isinstance(item, int | float):
                continue
            extras[key] = float(item)
    elif isinstance(result, int | float) and not isinstance(result, bool):
        value = result
    else:
        raise ValueError(f"scorer must return a number or a dict, got {type(result).__name__}")
    accuracy = float(value)
    if not 0.0 <= accuracy <= 1.0 or math.isnan(accuracy):
        raise ValueError(
            f"scorer accuracy {accuracy} is outside [0, 1]; evaluation needs 0/1 correctness: "
            "return a dict with an 'acc' key in [0, 1]"
        )
    return accuracy, extras


@dataclass(frozen=True)
class BenchmarkScore:
    """Aggregated score of one benchmark.

    Attributes:
        accuracy: Mean over problems of the per-problem mean accuracy, in percent.
        stderr: Standard error of that mean over problems, in percent (0 for one problem).
        num_problems: Problems scored.
        num_samples: Samples per problem.
        extras: Mean of every other numeric scorer field over all samples.
    """

    accuracy: float
    stderr: float
    num_problems: int
    num_samples: int
    extras: dict[str, float] = field(default_factory=dict)


def aggregate(
    accuracies: Sequence[Sequence[float]], extras: Sequence[Sequence[Mapping[str, float]]] = ()
) -> BenchmarkScore:
    """Aggregate per-sample accuracies (one list per problem) into a benchmark score.

    Args:
        accuracies: ``accuracies[i][j]`` is sample ``j`` of problem ``i``, shape ``(num_problems, n)``.
        extras: Matching per-sample extra fields (optional).

    Raises:
        ValueError: If there are no problems or the problems have different sample counts.

    Example:
        >>> aggregate([[1.0, 0.0], [1.0, 1.0]]).accuracy  # problem means 0.5 and 1.0
        75.0
    """
    if not accuracies:
        raise ValueError("no problems to aggregate")
    counts = {len(samples) for samples in accuracies}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every problem needs the same, non-zero number of samples; got {sorted(counts)}")
    means = [math.fsum(samples) / len(samples) for samples in accuracies]
    mean = math.fsum(means) / len(means)
    stderr = 0.0
    if len(means) > 1:
        variance = math.fsum((m - mean) ** 2 for m in means) / (len(means) - 1)
        stderr = math.sqrt(variance / len(means))
    totals: dict[str, list[float]] = {}
    for problem in extras:
        for sample in problem:
            for key, value in sample.items():
                totals.setdefault(key, []).append(value)
    extra_means = {key: math.fsum(values) / len(values) for key, values in sorted(totals.items())}
    return BenchmarkScore(100.0 * mean, 100.0 * stderr, len(means), counts.pop(), extra_means)
