"""Worker process of :class:`cures_verl.reward.pool.VerifierPool`: parses and verifies answers with math-verify.

:class:`~cures_verl.reward.pool.VerifierPool` starts this file as a script (``python .../_worker.py``), never
by import, so the worker needs only the standard library and math-verify (not ``cures_verl`` itself). It
handles one request at a time, on its main thread. math-verify's own ``signal.alarm`` timeouts are switched off
(``parsing_timeout=None``, ``timeout_seconds=None``); instead each request carries the seconds left to the
parent's deadline, and a ``SIGALRM`` timer set to them interrupts a computation still running then (sympy is
mostly Python code), so the worker answers ``{"timeout": true}`` and stays in service. A computation stuck
inside one long C call (a huge integer power) cannot be interrupted: the parent kills the worker when no answer
comes shortly after the deadline.

Protocol (stdin -> worker, worker -> a private copy of stdout; fd 1 itself is pointed at stderr so that stray
prints cannot corrupt a frame): each frame is a 4-byte big-endian length followed by that many bytes of
ASCII JSON.

* worker -> parent, once after start-up: ``{"ready": true}``.
* parent -> worker: ``{"golds": [str, ...], "pred": str, "kind": "boxed" | "answer" | "any" | "gold",
  "seconds": float, "cpu_seconds": int, "pred_boxes": [str, ...]}``. ``golds`` are the accepted answers (bare,
  or holding boxes, whose arguments are then the answer); for ``kind == "boxed"`` ``pred`` is the final answer
  group the parent extracted (box arguments joined by ``", "``) and the optional ``pred_boxes`` the response's
  last few box arguments (for the multi-part rule); for ``"answer"``/``"any"`` ``pred`` is the tail of the
  response; ``"gold"`` only parses the golds. Answers are parsed and compared by ``matching.py`` (loaded by file
  path, see :func:`_load_matching`).
* worker -> parent, twice per request: ``{"stage": "gold", "gold_parsed": bool}`` once the gold is parsed
  (the parent uses it to tell a hanging gold from a hanging prediction), then ``{"gold_parsed": bool,
  "pred_extracted": bool, "pred_parsed": bool, "correct": bool}``, ``{"timeout": true}`` if the request was
  still running ``seconds`` after it arrived, or ``{"error": str}`` if our own code raised (math-verify's
  ``parse``/``verify`` catch their own errors and return ``[]``/``False``).

Defences besides the parent's kill: ``RLIMIT_AS`` caps memory (``--memory-mb``; e.g. ``\\operatorname{zeros}``
of a huge size raises ``MemoryError`` instead of swapping the host), ``RLIMIT_CORE`` is 0, and before each
request the soft ``RLIMIT_CPU`` is set to the CPU time used so far plus ``cpu_seconds``, so a worker whose
parent died mid-request (no one left to kill it) is stopped by the kernel with ``SIGXCPU``. An idle orphan
reads EOF on stdin and exits.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import logging
import os
import resource
import signal
import struct
import sys
from collections import OrderedDict
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")
_MAX_FRAME_BYTES = 64 * 1024 * 1024
_GOLD_CACHE_SIZE = 4096


def _drop_own_directory_from_path() -> None:
    # Running a file as a script puts its directory first on sys.path; ours holds cures_verl's own
    # math_verify.py, which would shadow the math_verify package.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None  # EOF: the parent closed the pipe or died
    (size,) = _HEADER.unpack(header)
    if size > _MAX_FRAME_BYTES:
        raise ValueError(f"request frame of {size} bytes exceeds {_MAX_FRAME_BYTES}")
    payload = stream.read(size)
    if len(payload) < size:
        return None
    frame = json.loads(payload)
    if not isinstance(frame, dict):
        raise ValueError("request frame is not a JSON object")
    return frame


def _write_frame(stream: BinaryIO, obj: dict[str, Any]) -> None:
    payload = json.dumps(obj, ensure_ascii=True).encode("ascii")
    # A deadline alarm during the write would leave half a frame on the pipe: it fires after the write instead.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        stream.write(_HEADER.pack(len(payload)) + payload)
        stream.flush()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})


class _DeadlinePassed(BaseException):
    """Raised by ``SIGALRM`` when a request runs past its deadline. Not an ``Exception``, so that the
    ``except Exception`` blocks of math-verify and sympy cannot swallow it."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _DeadlinePassed


def _limit_cpu(extra_seconds: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + max(1, extra_seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _load_sibling(name: str) -> Any:
    """The module ``name.py`` next to this file (``matching.py``, or its stdlib-only helper ``boxes.py``).

    Imported as ``cures_verl.reward.<name>`` when this file is itself imported as part of the package (tests);
    loaded by file path, as ``_cures_reward_<name>``, when it runs as the worker script, so the worker never imports
    ``cures_verl``.
    """
    if __package__:
        return importlib.import_module(f"{__package__}.{name}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_cures_reward_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name; matching.py finds boxes.py here
    spec.loader.exec_module(module)
    return module


def _load_matching() -> Any:
    """The answer-matching module (``matching.py``), after the box rules it reads (``boxes.py``)."""
    _load_sibling("boxes")
    return _load_sibling("matching")


class _Verifier:
    """Parses and compares answers (``matching.py``) with math-verify's timeouts off; caches parsed golds."""

    def __init__(self) -> None:
        import math_verify  # type: ignore[import-untyped]
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        self._parse = math_verify.parse
        self.matching = _load_matching()
        # The fallback modes (the parent found no complete box) never look for boxes; "answer" needs an anchor
        # such as "final answer is" / "Answer:".
        self._pred_configs: dict[str, tuple[Any, ...]] = {
            "answer": (
                LatexExtractionConfig(try_extract_without_anchor=False, boxed_match_priority=-1),
                ExprExtractionConfig(try_extract_without_anchor=False),
            ),
            "any": (LatexExtractionConfig(boxed_match_priority=-1), ExprExtractionConfig()),
        }
        self._gold_cache: OrderedDict[str, Any] = OrderedDict()

    def parse_gold(self, gold: str) -> Any:
        """The parsed gold (a ``matching.Answer``), or ``None`` when it cannot be parsed."""
        if gold in self._gold_cache:
            self._gold_cache.move_to_end(gold)
            return self._gold_cache[gold]
        parsed = self.matching.parse_answer(gold)
        self._gold_cache[gold] = parsed
        if len(self._gold_cache) > _GOLD_CACHE_SIZE:
            self._gold_cache.popitem(last=False)
        return parsed

    def parse_pred(self, pred: str, kind: str) -> tuple[bool, Any]:
        """Return (extracted, parsed answer or ``None``)."""
        if kind == "boxed":
            return True, self.matching.parse_answer(pred)
        # first_match fallback adds the raw matched string, which tells "found but unparseable" apart from "none".
        found = self._parse(pred, self._pred_configs[kind], fallback_mode="first_match", parsing_timeout=None)
        return bool(found), self.matching.answer_from_expressions(found)

    def verify(self, golds: list[Any], pred: Any, recent_boxes: list[str] | None = None) -> bool:
        """Whether ``pred`` matches any gold; ``recent_boxes`` enables the multi-part rule (see matching.py)."""
        return any(self.matching.answers_match(gold, pred) for gold in golds) or any(
            self.matching.multipart_match(gold, pred, recent_boxes or []) for gold in golds
        )


def _handle(verifier: _Verifier, request: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    kind = request["kind"]
    if kind not in ("boxed", "answer", "any", "gold"):
        raise ValueError(f"unknown kind {kind!r}")
    golds = [verifier.parse_gold(gold) for gold in request["golds"]]
    golds = [gold for gold in golds if gold is not None]
    _write_frame(out, {"stage": "gold", "gold_parsed": bool(golds)})
    if kind == "gold":  # only the gold's status is wanted (the response had no answer to check)
        return {"gold_parsed": bool(golds), "pred_extracted": False, "pred_parsed": False, "correct": False}
    extracted, pred = verifier.parse_pred(request["pred"], kind)
    recent = request.get("pred_boxes") if kind == "boxed" else None
    correct = bool(golds) and pred is not None and verifier.verify(golds, pred, recent)
    return {
        "gold_parsed": bool(golds),
        "pred_extracted": extracted,
        "pred_parsed": pred is not None,
        "correct": correct,
    }


def _warm_up(verifier: _Verifier) -> None:
    """Grade one answer before reporting ready: the lazy imports and parser set-up (about 0.2 s) would otherwise fall
    on the first request, which is on the clock when this worker has just replaced a killed one."""
    try:
        _handle(verifier, {"golds": ["\\boxed{\\frac{1}{2}}"], "pred": "\\boxed{0.5}", "kind": "boxed"}, io.BytesIO())
    except Exception as exc:  # a real request will report the problem; the worker must still start
        sys.stderr.write(f"math-verify worker warm-up failed: {type(exc).__name__}: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory-mb", type=int, default=0, help="RLIMIT_AS in MiB; 0 leaves it unlimited")
    args = parser.parse_args(argv)

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _drop_own_directory_from_path()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGALRM, _on_alarm)

    # math-verify warns once per process that its timeouts are off: that is deliberate here.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    verifier = _Verifier()
    _warm_up(verifier)
    if args.memory_mb > 0:
        limit = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    stdin = sys.stdin.buffer
    try:
        _write_frame(out, {"ready": True})
        while True:
            request = _read_frame(stdin)
            if request is None:
                return 0
            _limit_cpu(int(request.get("cpu_seconds", 60)))
            try:
                # The parent's deadline, enforced here too: a computation in Python code (most of sympy) stops at
                # the alarm and this process serves the next request; one stuck inside a single C call (a huge
                # integer power) cannot be interrupted, and the parent kills the process.
                signal.setitimer(signal.ITIMER_REAL, max(0.001, float(request.get("seconds", 3600))))
                try:
                    reply = _handle(verifier, request, out)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except BrokenPipeError:
                raise
            except _DeadlinePassed:
                reply = {"timeout": True}
            except Exception as exc:  # reported to the parent, which flags the sample as worker_error
                reply = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            _write_frame(out, reply)
    except BrokenPipeError:
        return 0  # the parent went away (exit, or it killed the pool while we were starting)


if __name__ == "__main__":
    sys.exit(main())
