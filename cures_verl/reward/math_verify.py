"""0/1 math reward for verl's ``reward.custom_reward_function``, built on math-verify, safe off the main thread.

CurES trains with a verifiable 0/1 reward (CurES Eq. 2; the released code uses ``math_verify``). This module
is that reward, hardened for what verl 0.9.1 does with it: ``NaiveRewardManager.run_single``
(``verl/experimental/reward_loop/reward_manager/naive.py``) calls ``compute_score`` with keyword arguments only,
from the event loop's default thread pool (``run_in_executor(None, ...)``) inside a ``RewardLoopWorker`` Ray
actor, so never on the main thread, where math-verify's ``signal.alarm`` timeouts raise. ``extra_info`` gains
``num_turns`` and ``rollout_reward_scores``, and ``reward.custom_reward_function.reward_kwargs`` are merged
into the call as keyword arguments (``verl/trainer/ppo/reward.py::get_custom_reward_fn``).

Pipeline for one response:

1. Extract the final answer in pure Python (:mod:`cures_verl.reward.extraction`): the final answer group (the
   last ``\\boxed{...}`` and the boxes just before it that only connectors separate), with a length cap. No box
   means score 0 without parsing the response (unless a fallback ``extraction`` mode is chosen); only the gold
   is parsed, once per distinct gold, to report ``gold_parsed``.
2. Look the (gold, answer) pair up in a result cache; GRPO's ``n`` rollouts of a prompt repeat answers a lot.
3. Otherwise send the short answer and the gold to a worker process (:mod:`cures_verl.reward.pool`), which parses
   and compares them with :mod:`cures_verl.reward.matching` (math-verify's parsing, several answers, notation
   rewrites, exact comparison; the rules are in ``docs/reward.md``) under the request's deadline.

Every returned dict has the keys :data:`RESULT_KEYS`, all floats (verl takes the key set from the first sample,
and with an ``acc`` key it files validation under ``val-core/<data_source>/acc/mean@N``). A gold that is empty,
of a wrong type or cannot be parsed scores 0 with ``gold_unparseable == 1`` (by default it never raises: in
verl's reward loop an exception ends the run); it is logged once per distinct gold and counted in
:func:`reward_stats`, so a broken dataset row is not mistaken for a wrong answer. :func:`check_ground_truths`
lets data preparation and the pre-flight check reject such rows before a run.

Departures from verl's ``verl/utils/reward_score/math_verify.py``: the prediction is the final answer group only
(verl runs math-verify's LaTeX and plain-expression extraction over the whole response), a hung worker is
stopped instead of left running, the matching rules differ from math-verify's (several answers, repeating
decimals, e-notation, Unicode, set-builder notation, percentages, degrees; decimals are exact rationals, so
``0.333333`` is not ``1/3``), and the dict result carries parse/timeout indicators.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from cures_verl.reward.extraction import find_answer_boxes, gold_answers, normalize_answer
from cures_verl.reward.pool import VerifierPool, VerifyOutcome

__all__ = [
    "ENV_MEMORY_MB",
    "ENV_NUM_WORKERS",
    "ENV_TIMEOUT",
    "EXTRACTION_MODES",
    "NOT_CHECKED",
    "RESULT_KEYS",
    "RewardOptions",
    "check_ground_truths",
    "clear_caches",
    "compute_score",
    "reward_stats",
    "shutdown_pool",
]

logger = logging.getLogger(__name__)

RESULT_KEYS: Final[tuple[str, ...]] = (
    "score",
    "acc",
    "pred_extracted",
    "pred_too_long",
    "pred_parsed",
    "gold_parsed",
    "gold_unparseable",
    "timeout",
    "worker_error",
)
"""Keys of every dict :func:`compute_score` returns, in order; all values are 0.0 or 1.0."""

EXTRACTION_MODES: Final[tuple[str, ...]] = ("boxed", "boxed_or_answer", "boxed_or_last_latex")
"""Accepted values of the ``extraction`` option; see :class:`RewardOptions`."""

# Worker "kind" used when a fallback mode finds no complete box.
_FALLBACK_KIND: Final[dict[str, str]] = {"boxed_or_answer": "answer", "boxed_or_last_latex": "any"}
INVALID_GOLD_POLICIES: Final[tuple[str, ...]] = ("raise", "flag")

ENV_NUM_WORKERS: Final = "CURES_REWARD_NUM_WORKERS"
"""Environment variable: default number of worker processes (the ``num_workers`` option wins)."""
ENV_TIMEOUT: Final = "CURES_REWARD_TIMEOUT"
"""Environment variable: default per-call timeout in seconds (the ``timeout`` option wins)."""
ENV_MEMORY_MB: Final = "CURES_REWARD_MEMORY_MB"
"""Environment variable: address-space limit of each worker in MiB (default 2048; 0 = unlimited)."""

_DEFAULT_TIMEOUT: Final = 5.0
_DEFAULT_MEMORY_MB: Final = 2048
_RESULT_CACHE_SIZE: Final = 16384
_RECENT_BOXES: Final = 8  # boxes sent for the multi-part rule (a gold with several answers, boxed apart)
_MAX_REMEMBERED_GOLDS: Final = 10000
# Most standby workers beyond num_workers: verl's executor runs at most min(32, CPUs + 4) calls at once.
_MAX_STANDBY: Final = 32
# Keyword arguments verl itself may add to the call (when a reward-model router is configured); ignored here.
_VERL_EXTRA_KWARGS: Final = frozenset({"reward_router_address", "reward_model_tokenizer"})


def _env_number(name: str, kind: type[int] | type[float]) -> int | float | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(
            f"environment variable {name}={raw!r} is not a valid {kind.__name__}; fix or unset it"
        ) from exc


def _default_num_workers() -> int:
    env = _env_number(ENV_NUM_WORKERS, int)
    if env is not None:
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _default_timeout() -> float:
    env = _env_number(ENV_TIMEOUT, float)
    return _DEFAULT_TIMEOUT if env is None else float(env)


@dataclass(frozen=True, kw_only=True)
class RewardOptions:
    """Options of :func:`compute_score`, passed as keyword arguments (``reward.custom_reward_function.reward_kwargs``).

    Example:
        >>> RewardOptions.from_kwargs({"extraction": "boxed_or_answer", "timeout": 2}).timeout
        2.0
        >>> RewardOptions.from_kwargs({"extration": "boxed"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: compute_score got unknown option(s) ['extration']; valid options: extraction, ...
    """

    extraction: str = "boxed"
    """Where the predicted answer comes from. ``"boxed"``: the argument of the last ``\\boxed{}``/``\\fbox{}``
    only; no box (or an unclosed last box) scores 0. ``"boxed_or_answer"``: the last box, else math-verify's
    anchored extraction ("final answer is X", "Answer: X", LaTeX or a plain number) over the last
    ``max_answer_chars`` characters. ``"boxed_or_last_latex"``: the last box, else math-verify's full extraction
    (anchors, then the last ``$...$``/``\\[...\\]``, then the last plain number or expression) over the same
    tail; the closest to verl's own math-verify scorer."""

    timeout: float = field(default_factory=_default_timeout)
    """Seconds a worker may spend on one response (gold parse + answer parse + verify); past it the worker is
    killed and the response scores 0 with ``timeout == 1``. Default 5, or ``$CURES_REWARD_TIMEOUT``."""

    num_workers: int = field(default_factory=_default_num_workers)
    """Worker processes in this process's pool. Default ``min(4, usable CPUs)``, or ``$CURES_REWARD_NUM_WORKERS``.
    Fixed when the pool starts: a later call asking for another size raises ``ValueError``."""

    max_answer_chars: int = 1000
    """Longest extracted answer sent to math-verify; a longer box argument scores 0 with ``pred_too_long == 1``.
    The fallback modes search only this many trailing characters of the response."""

    invalid_gold: str = "flag"
    """What a ground truth that is not a string/number/list of those (``None``, ``""``, NaN...) does: ``"flag"``
    it (score 0, ``gold_unparseable == 1``, counted, logged once per distinct value; the default, so that one bad
    row cannot end a training run), or ``"raise"`` a ``TypeError``/``ValueError`` naming the problem."""

    use_cache: bool = True
    """Reuse results for repeated (gold, answer) pairs. math-verify is deterministic, so this only saves time;
    timeouts and worker errors are never cached."""

    def __post_init__(self) -> None:
        if self.extraction not in EXTRACTION_MODES:
            raise ValueError(f"extraction={self.extraction!r} is not one of {list(EXTRACTION_MODES)}")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds, got {type(self.timeout).__name__}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {self.timeout!r}")
        object.__setattr__(self, "timeout", float(self.timeout))
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 1:
            raise ValueError(f"num_workers must be an integer >= 1, got {self.num_workers!r}")
        if (
            isinstance(self.max_answer_chars, bool)
            or not isinstance(self.max_answer_chars, int)
            or self.max_answer_chars < 1
        ):
            raise ValueError(f"max_answer_chars must be an integer >= 1, got {self.max_answer_chars!r}")
        if self.invalid_gold not in INVALID_GOLD_POLICIES:
            raise ValueError(f"invalid_gold={self.invalid_gold!r} is not one of {list(INVALID_GOLD_POLICIES)}")
        if not isinstance(self.use_cache, bool):
            raise TypeError(f"use_cache must be a bool, got {self.use_cache!r}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RewardOptions:
        """Build options from ``compute_score``'s extra keyword arguments.

        Args:
            kwargs: The keyword arguments; verl's own extras (``reward_router_address``, ``reward_model_tokenizer``)
                are ignored.

        Returns:
            The validated options.

        Raises:
            TypeError: For an unknown option name (a typo would otherwise be ignored silently) or a wrong type.
            ValueError: For an out-of-range value.
        """
        valid = cls.__dataclass_fields__.keys()
        unknown = sorted(set(kwargs) - set(valid) - _VERL_EXTRA_KWARGS)
        if unknown:
            raise TypeError(f"compute_score got unknown option(s) {unknown}; valid options: {', '.join(sorted(valid))}")
        return cls(**{name: value for name, value in kwargs.items() if name in valid})


# ---------------------------------------------------------------------------------------------- shared state


class _LRU:
    """A small thread-safe least-recently-used map."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value for ``key``, or ``None``."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class _State:
    """Per-process counters and memories; rebuilt after ``fork`` (its locks may be held by another thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: VerifierPool | None = None
        self.pool_lock = threading.Lock()
        self.cache = _LRU(_RESULT_CACHE_SIZE)  # (gold inputs, kind, prediction) -> result dict
        self.gold_status = _LRU(_RESULT_CACHE_SIZE)  # gold inputs -> whether math-verify parses them
        self.counts: dict[str, int] = dict.fromkeys(_STAT_KEYS, 0)
        self.logged_golds: set[object] = set()
        self.hung_golds: set[tuple[str, ...]] = set()


_STAT_KEYS: Final[tuple[str, ...]] = (
    "calls",
    "cache_hits",
    "no_answer",
    "answer_too_long",
    "pred_unparsed",
    "gold_unparsed",
    "invalid_gold",
    "timeouts",
    "gold_timeouts",
    "worker_errors",
)
_STATE = _State()


def _reset_after_fork() -> None:
    global _STATE
    _STATE = _State()  # the parent's workers and pipes belong to the parent: forget, never kill, them


os.register_at_fork(after_in_child=_reset_after_fork)


def _count(*names: str) -> None:
    with _STATE.lock:
        for name in names:
            _STATE.counts[name] += 1


def _remember_once(memory: set[Any], item: object) -> bool:
    """Add ``item`` to a bounded memory; True the first time (so the caller logs it)."""
    with _STATE.lock:
        if item in memory:
            return False
        if len(memory) >= _MAX_REMEMBERED_GOLDS:
            return False
        memory.add(item)
        if len(memory) == _MAX_REMEMBERED_GOLDS:
            logger.warning("%d distinct bad gold answers logged; not logging further ones", _MAX_REMEMBERED_GOLDS)
        return True


def reward_stats() -> dict[str, int]:
    """Counters of this process since start or the last :func:`clear_caches` (``worker_restarts``: since the pool
    started).

    Returns:
        ``calls``, ``cache_hits``, ``no_answer`` (no complete box and no fallback answer), ``answer_too_long``,
        ``pred_unparsed``, ``gold_unparsed``, ``invalid_gold`` (wrong type/empty, with ``invalid_gold="flag"``),
        ``timeouts`` (workers killed at the deadline), ``gold_timeouts`` (of those, while parsing the gold),
        ``worker_errors`` and ``worker_restarts``.
    """
    with _STATE.lock:
        stats = dict(_STATE.counts)
    pool = _STATE.pool
    stats["worker_restarts"] = pool.restarts if pool is not None else 0
    return stats


def clear_caches() -> None:
    """Forget cached results, counters, the once-only log memory and the golds known to hang."""
    _STATE.cache.clear()
    _STATE.gold_status.clear()
    with _STATE.lock:
        _STATE.counts = dict.fromkeys(_STAT_KEYS, 0)
        _STATE.logged_golds.clear()
        _STATE.hung_golds.clear()


def _check_math_verify() -> None:
    if importlib.util.find_spec("math_verify") is None:
        raise ImportError(
            "cures_verl.reward.math_verify needs math-verify: pip install 'math-verify>=0.8' "
            "(or pip install 'cures-verl[math]')"
        )
    try:
        version = importlib.metadata.version("math-verify")
    except importlib.metadata.PackageNotFoundError:
        return  # importable without distribution metadata (a vendored copy): nothing to compare
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if major_minor < (0, 8):
        raise ImportError(
            f"math-verify {version} is too old: its parse/verify cannot switch off signal-based timeouts; "
            "pip install 'math-verify>=0.8'"
        )


def _get_pool(num_workers: int) -> VerifierPool:
    state = _STATE
    pool = state.pool
    if pool is None or pool.closed:
        with state.pool_lock:
            if state.pool is None or state.pool.closed:
                _check_math_verify()
                memory = _env_number(ENV_MEMORY_MB, int)
                state.pool = VerifierPool(
                    num_workers=num_workers,
                    memory_limit_mb=_DEFAULT_MEMORY_MB if memory is None else int(memory),
                    # a ready standby per concurrent caller beyond num_workers (docs/reward.md, "Standby workers")
                    max_standby=_MAX_STANDBY,
                    warm_standbys=None,
                )
            pool = state.pool
    if pool.num_workers != num_workers:
        raise ValueError(
            f"num_workers={num_workers} but this process's math-verify pool already runs {pool.num_workers} "
            "workers; use one value for every call (reward_kwargs or $CURES_REWARD_NUM_WORKERS), or call "
            "cures_verl.reward.math_verify.shutdown_pool() first"
        )
    return pool


def shutdown_pool() -> None:
    """Kill this process's worker processes; the next :func:`compute_score` starts a new pool. Runs at exit."""
    with _STATE.pool_lock:
        pool, _STATE.pool = _STATE.pool, None
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown_pool)


# ------------------------------------------------------------------------------------------------ the reward


def _result(
    *,
    correct: bool = False,
    pred_extracted: bool = False,
    pred_too_long: bool = False,
    pred_parsed: bool = False,
    gold_parsed: bool = False,
    gold_unparseable: bool = False,
    timeout: bool = False,
    worker_error: bool = False,
) -> dict[str, float]:
    score = 1.0 if correct else 0.0
    return {
        "score": score,
        "acc": score,
        "pred_extracted": float(pred_extracted),
        "pred_too_long": float(pred_too_long),
        "pred_parsed": float(pred_parsed),
        "gold_parsed": float(gold_parsed),
        "gold_unparseable": float(gold_unparseable),
        "timeout": float(timeout),
        "worker_error": float(worker_error),
    }


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: object,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    r"""Score one response 1.0 if its final answer is mathematically equal to the ground truth, else 0.0.

    The signature is verl's ``custom_reward_function`` contract; verl calls it with keyword arguments, and the
    first three also work positionally. It is thread-safe and never uses signals. What "equal" means (several
    answers, notations, numeric tolerance) is the matching rule of ``docs/reward.md``
    (:mod:`cures_verl.reward.matching`).

    Args:
        data_source: The row's ``data_source``; unused (every source is scored the same way).
        solution_str: The decoded response. Any string is safe: it is never executed, and no input makes this
            function raise or run much past ``timeout`` (waiting for a free worker aside).
        ground_truth: ``reward_model["ground_truth"]``: a string (bare, or holding boxes), a number, or a list of
            accepted answers. Other types, and empty ones, follow the ``invalid_gold`` option.
        extra_info: The row's ``extra_info``; unused (verl adds ``num_turns`` and ``rollout_reward_scores``).
        **kwargs: Options, see :class:`RewardOptions`: ``extraction``, ``timeout``, ``num_workers``,
            ``max_answer_chars``, ``invalid_gold``, ``use_cache``.

    Returns:
        A dict with exactly the keys :data:`RESULT_KEYS`, all 0.0/1.0: ``score`` and ``acc`` (the reward),
        ``pred_extracted`` (an answer was found), ``pred_too_long`` (it exceeded ``max_answer_chars``),
        ``pred_parsed`` (it parsed), ``gold_parsed`` (the ground truth parsed), ``gold_unparseable`` (the ground
        truth is empty, of a wrong type, unparseable, or its parsing hung: the dataset row, not the model, is at
        fault), ``timeout`` (the worker was killed at the deadline) and ``worker_error`` (the worker crashed or
        raised).

    Raises:
        TypeError: For an unknown option, a non-string ``solution_str``, or (only with ``invalid_gold="raise"``)
            a ground truth of an unsupported type.
        ValueError: For an invalid option value or (only with ``invalid_gold="raise"``) an empty or non-finite
            ground truth.
        ImportError: If math-verify (>= 0.8) is not installed.
        RuntimeError: If no worker process can be started at all.

    Example:
        >>> result = compute_score(data_source="math", solution_str=r"so $x=\boxed{\dfrac{1}{2}}$", ground_truth="0.5")
        >>> result["score"], result["pred_parsed"], result["gold_parsed"], result["timeout"]
        (1.0, 1.0, 1.0, 0.0)
        >>> compute_score(data_source="math", solution_str=r"\boxed{1}", ground_truth="")["gold_unparseable"]
        1.0
    """
    options = RewardOptions.from_kwargs(kwargs)
    if not isinstance(solution_str, str):
        raise TypeError(f"solution_str must be the decoded response string, got {type(solution_str).__name__}")
    _count("calls")
    try:
        golds = gold_answers(ground_truth)
    except (TypeError, ValueError) as exc:
        if options.invalid_gold == "raise":
            raise type(exc)(
                f"{exc} (data_source={data_source!r}; invalid_gold='flag', the default, scores such rows 0 with "
                "gold_unparseable=1 instead)"
            ) from exc
        _count("invalid_gold")
        if _remember_once(_STATE.logged_golds, ("invalid", repr(ground_truth)[:200])):
            logger.error(
                "invalid ground truth scored 0 with gold_unparseable=1 (data_source=%r): %s; "
                "prepare_data and the pre-flight check reject such rows",
                data_source,
                exc,
            )
        return _result(gold_unparseable=True)
    return _score(solution_str, golds, options)


def _score(solution_str: str, golds: tuple[str, ...], options: RewardOptions) -> dict[str, float]:
    gold_inputs = golds
    boxes = find_answer_boxes(solution_str, max_chars=options.max_answer_chars, max_boxes=_RECENT_BOXES)
    recent: tuple[str, ...] = ()
    if boxes.status == "too_long":
        _count("answer_too_long")
        return _no_answer_result(golds, gold_inputs, options, pred_extracted=True, pred_too_long=True)
    if boxes.status == "found":
        group = [part for part in map(normalize_answer, boxes.group) if part]
        if not group:  # \boxed{} or \boxed{ . }
            _count("pred_unparsed")
            return _no_answer_result(golds, gold_inputs, options, pred_extracted=True)
        kind, pred = "boxed", ", ".join(group)
        if len(boxes.recent) > len(boxes.group):  # the multi-part rule may need the earlier boxes
            recent = tuple(part for part in map(normalize_answer, boxes.recent) if part)
    elif options.extraction == "boxed":
        _count("no_answer")
        return _no_answer_result(golds, gold_inputs, options)
    else:
        kind, pred = _FALLBACK_KIND[options.extraction], solution_str[-options.max_answer_chars :]

    if gold_inputs in _STATE.hung_golds:
        _count("gold_unparsed")
        return _result(pred_extracted=kind == "boxed", gold_unparseable=True)
    key = (gold_inputs, kind, pred, recent)
    if options.use_cache:
        cached = _STATE.cache.get(key)
        if cached is not None:
            _count("cache_hits")
            _count_flags(cached)
            return dict(cached)

    request: dict[str, Any] = {"golds": list(gold_inputs), "pred": pred, "kind": kind}
    if recent:
        request["pred_boxes"] = list(recent)
    outcome = _get_pool(options.num_workers).submit(request, timeout=options.timeout)
    result = _interpret(outcome, golds, gold_inputs, kind)
    if outcome.status == "ok" and options.use_cache:
        _STATE.cache.put(key, dict(result))
    return result


def _no_answer_result(
    golds: tuple[str, ...],
    gold_inputs: tuple[str, ...],
    options: RewardOptions,
    *,
    pred_extracted: bool = False,
    pred_too_long: bool = False,
) -> dict[str, float]:
    """The result for a response with nothing to verify; the gold's status is still reported."""
    parses = _gold_parses(golds, gold_inputs, options)
    return _result(
        pred_extracted=pred_extracted,
        pred_too_long=pred_too_long,
        gold_parsed=parses is True,
        gold_unparseable=parses is False,
    )


def _gold_parses(golds: tuple[str, ...], gold_inputs: tuple[str, ...], options: RewardOptions) -> bool | None:
    """Whether the gold parses, for responses that never reach a worker (no answer, too long); ``None`` when a
    worker crashed before it could tell.

    Known from an earlier call for most golds; otherwise a worker parses just the gold, once per distinct gold.
    """
    known: bool | None = False if gold_inputs in _STATE.hung_golds else None
    if known is None and options.use_cache:
        known = _STATE.gold_status.get(gold_inputs)
    if known is None:
        request = {"golds": list(gold_inputs), "pred": "", "kind": "gold"}
        outcome = _get_pool(options.num_workers).submit(request, timeout=options.timeout)
        result = _interpret(outcome, golds, gold_inputs, "gold", count=False)
        if result["gold_parsed"] == 1.0:
            known = True
        elif result["gold_unparseable"] == 1.0:
            known = False
    if known is False:
        _count("gold_unparsed")
    return known


def _count_flags(result: Mapping[str, float]) -> None:
    names = []
    if result["gold_unparseable"] == 1.0:
        names.append("gold_unparsed")
    elif result["pred_parsed"] == 0.0 and not result["timeout"] and not result["worker_error"]:
        names.append("pred_unparsed" if result["pred_extracted"] else "no_answer")
    _count(*names)


def _interpret(
    outcome: VerifyOutcome, golds: tuple[str, ...], gold_inputs: tuple[str, ...], kind: str, *, count: bool = True
) -> dict[str, float]:
    extracted_by_us = kind == "boxed"
    if outcome.gold_parsed is not None:
        _STATE.gold_status.put(gold_inputs, outcome.gold_parsed)
    if outcome.status == "ok":
        reply = outcome.reply
        gold_parsed = bool(reply.get("gold_parsed"))
        result = _result(
            correct=bool(reply.get("correct")),
            pred_extracted=extracted_by_us or bool(reply.get("pred_extracted")),
            pred_parsed=bool(reply.get("pred_parsed")),
            gold_parsed=gold_parsed,
            gold_unparseable=not gold_parsed,
        )
        if count:
            _count_flags(result)
        if not gold_parsed and _remember_once(_STATE.logged_golds, golds):
            logger.warning(
                "the ground truth %r cannot be parsed: such rows score 0 with gold_unparseable=1; prepare_data and "
                "the pre-flight check reject them",
                golds,
            )
        return result
    if outcome.status == "timeout":
        _count("timeouts")
        gold_hung = outcome.gold_hung  # the worker spent long enough on the gold without finishing it
        if gold_hung:
            # The gold itself hung: remember it, so its other rollouts do not each cost a full timeout.
            _count("gold_timeouts")
            with _STATE.lock:
                if len(_STATE.hung_golds) < _MAX_REMEMBERED_GOLDS:
                    _STATE.hung_golds.add(gold_inputs)
            if _remember_once(_STATE.logged_golds, ("hung", golds)):
                logger.warning("parsing the ground truth %r exceeded the timeout; its rows score 0", golds)
        return _result(
            pred_extracted=extracted_by_us,
            gold_parsed=bool(outcome.gold_parsed),
            gold_unparseable=gold_hung or outcome.gold_parsed is False,
            timeout=True,
        )
    _count("worker_errors")
    logger.warning("math-verify worker %s: %s (scored 0, worker_error=1)", outcome.status, outcome.detail)
    return _result(
        pred_extracted=extracted_by_us,
        gold_parsed=bool(outcome.gold_parsed),
        gold_unparseable=outcome.gold_parsed is False,
        worker_error=True,
    )


_CHECK_ATTEMPTS: Final = 3
NOT_CHECKED: Final = "not checked (time budget)"
"""The :func:`check_ground_truths` verdict for values still unchecked when its ``deadline`` passed."""


def check_ground_truths(
    ground_truths: Sequence[object],
    *,
    timeout: float | None = None,
    num_workers: int | None = None,
    threads: int | None = None,
    deadline: float | None = None,
) -> list[str | None]:
    r"""Say, for each ground truth, whether :func:`compute_score` can grade against it: ``None`` when it can, else
    the reason (empty, wrong type, cannot be parsed, its parsing hangs). For data preparation and the pre-flight
    check, which reject such rows before a run instead of letting them score 0 with ``gold_unparseable=1``.

    Each distinct value is parsed once, by the reward's own worker processes (so a gold whose parsing hangs
    costs ``timeout``, not the caller's process).

    Args:
        ground_truths: ``reward_model.ground_truth`` values, one per row.
        timeout: Seconds per distinct ground truth (default: the reward's default timeout).
        num_workers: Worker processes (default: the reward's default).
        threads: Ground truths checked at once; default one per worker (more would only queue, and waiting for a
            worker counts against ``timeout``).
        deadline: A ``time.monotonic()`` value after which no further value is sent to a worker; the rows of
            values left unchecked get :data:`NOT_CHECKED`.

    Returns:
        One entry per input, in order.

    Example:
        >>> check_ground_truths(["\\frac{1}{2}", "\\frac{", "(3,4),(4,3)"])
        [None, 'cannot be parsed', None]
    """
    options = RewardOptions.from_kwargs(
        {
            **({"timeout": timeout} if timeout is not None else {}),
            **({"num_workers": num_workers} if num_workers is not None else {}),
        }
    )
    verdicts: dict[str, str | None] = {}
    inputs: list[tuple[str, ...] | str] = []
    for value in ground_truths:
        try:
            inputs.append(gold_answers(value))
        except (TypeError, ValueError) as exc:
            inputs.append(str(exc))
    distinct = sorted({item for item in inputs if isinstance(item, tuple)})

    def check(golds: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
        outcome = None
        for _ in range(_CHECK_ATTEMPTS):  # a timeout that says nothing about the gold (a busy machine) is retried
            if deadline is not None and time.monotonic() > deadline:
                return golds, NOT_CHECKED
            outcome = _get_pool(options.num_workers).submit(
                {"golds": list(golds), "pred": "", "kind": "gold"}, timeout=options.timeout
            )
            if outcome.status == "ok":
                return golds, None if outcome.reply.get("gold_parsed") else "cannot be parsed"
            if outcome.status == "timeout" and outcome.gold_hung:
                return golds, f"parsing it takes longer than the reward's timeout ({options.timeout:g} s)"
            if outcome.status == "error":
                return golds, f"parsing it raised {outcome.detail}"
        assert outcome is not None
        return golds, f"could not be checked in {_CHECK_ATTEMPTS} attempts: {outcome.status} ({outcome.detail})"

    with ThreadPoolExecutor(max_workers=threads or options.num_workers) as executor:
        for golds, verdict in executor.map(check, distinct):
            verdicts["\x00".join(golds)] = verdict
    return [item if isinstance(item, str) else verdicts["\x00".join(item)] for item in inputs]
