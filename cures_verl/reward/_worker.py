"""Worker process of :class:`cures_verl.reward.pool.VerifierPool`: parses and verifies answers with math-verify.

:class:`~cures_verl.reward.pool.VerifierPool` starts this file as a script (``python .../_worker.py``), never
by import, so the worker needs only the standard library and math-verify (not ``cures_verl`` itself). It
handles one request at a time; the parent kills it when a request exceeds its deadline, which is the only
timeout mechanism: math-verify's own ``signal.alarm`` timeouts are switched off (``parsing_timeout=None``,
``timeout_seconds=None``) because they fail outside the main thread.

Protocol (stdin -> worker, worker -> a private copy of stdout; fd 1 itself is pointed at stderr so that stray
prints cannot corrupt a frame): each frame is a 4-byte big-endian length followed by that many bytes of
ASCII JSON.

* worker -> parent, once after start-up: ``{"ready": true}``.
* parent -> worker: ``{"golds": [str, ...], "pred": str, "kind": "boxed" | "answer" | "any" | "gold",
  "cpu_seconds": int}``. ``golds`` and, for ``kind == "boxed"``, ``pred`` are already wrapped by
  ``extraction.to_math_verify_input``; for ``"answer"``/``"any"`` ``pred`` is the tail of the response;
  ``"gold"`` only parses the golds.
* worker -> parent, twice per request: ``{"stage": "gold", "gold_parsed": bool}`` once the gold is parsed
  (the parent uses it to tell a hanging gold from a hanging prediction), then ``{"gold_parsed": bool,
  "pred_extracted": bool, "pred_parsed": bool, "correct": bool}``, or ``{"error": str}`` if our own code
  raised (math-verify's ``parse``/``verify`` catch their own errors and return ``[]``/``False``).

Defences besides the parent's kill: ``RLIMIT_AS`` caps memory (``--memory-mb``; e.g. ``\\operatorname{zeros}``
of a huge size raises ``MemoryError`` instead of swapping the host), ``RLIMIT_CORE`` is 0, and before each
request the soft ``RLIMIT_CPU`` is set to the CPU time used so far plus ``cpu_seconds``, so a worker whose
parent died mid-request (no one left to kill it) is stopped by the kernel with ``SIGXCPU``. An idle orphan
reads EOF on stdin and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
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
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _limit_cpu(extra_seconds: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + max(1, extra_seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class _Verifier:
    """math-verify with its timeouts off, plus a per-process cache of parsed gold answers."""

    def __init__(self) -> None:
        import math_verify  # type: ignore[import-untyped]
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        self._parse = math_verify.parse
        self._verify = math_verify.verify
        boxed_latex = LatexExtractionConfig(boxed_match_priority=0)
        self._gold_config = (boxed_latex,)
        # "boxed": the parent already extracted the box argument. The fallbacks never look for boxes (the parent
        # found none, or only an unclosed one); "answer" needs an anchor such as "final answer is" / "Answer:".
        self._pred_configs: dict[str, tuple[Any, ...]] = {
            "boxed": (boxed_latex,),
            "answer": (
                LatexExtractionConfig(try_extract_without_anchor=False, boxed_match_priority=-1),
                ExprExtractionConfig(try_extract_without_anchor=False),
            ),
            "any": (LatexExtractionConfig(boxed_match_priority=-1), ExprExtractionConfig()),
        }
        self._gold_cache: OrderedDict[str, list[Any]] = OrderedDict()

    def parse_gold(self, gold: str) -> list[Any]:
        cached = self._gold_cache.get(gold)
        if cached is not None:
            self._gold_cache.move_to_end(gold)
            return cached
        parsed = _expressions(self._parse(gold, self._gold_config, fallback_mode="no_fallback", parsing_timeout=None))
        self._gold_cache[gold] = parsed
        if len(self._gold_cache) > _GOLD_CACHE_SIZE:
            self._gold_cache.popitem(last=False)
        return parsed

    def parse_pred(self, pred: str, kind: str) -> tuple[bool, list[Any]]:
        """Return (extracted, parsed expressions)."""
        if kind == "boxed":
            found = self._parse(pred, self._pred_configs["boxed"], fallback_mode="no_fallback", parsing_timeout=None)
            return True, _expressions(found)
        # first_match fallback adds the raw matched string, which tells "found but unparseable" apart from "none".
        found = self._parse(pred, self._pred_configs[kind], fallback_mode="first_match", parsing_timeout=None)
        return bool(found), _expressions(found)

    def verify(self, golds: list[Any], preds: list[Any]) -> bool:
        return bool(self._verify(golds, preds, timeout_seconds=None))


def _expressions(parsed: list[Any]) -> list[Any]:
    return [item for item in parsed if not isinstance(item, str)]


def _handle(verifier: _Verifier, request: dict[str, Any], out: BinaryIO) -> dict[str, Any]:
    kind = request["kind"]
    if kind not in ("boxed", "answer", "any", "gold"):
        raise ValueError(f"unknown kind {kind!r}")
    gold_exprs: list[Any] = []
    for gold in request["golds"]:
        gold_exprs.extend(verifier.parse_gold(gold))
    _write_frame(out, {"stage": "gold", "gold_parsed": bool(gold_exprs)})
    if kind == "gold":  # only the gold's status is wanted (the response had no answer to check)
        return {"gold_parsed": bool(gold_exprs), "pred_extracted": False, "pred_parsed": False, "correct": False}
    extracted, pred_exprs = verifier.parse_pred(request["pred"], kind)
    correct = bool(gold_exprs) and bool(pred_exprs) and verifier.verify(gold_exprs, pred_exprs)
    return {
        "gold_parsed": bool(gold_exprs),
        "pred_extracted": extracted,
        "pred_parsed": bool(pred_exprs),
        "correct": correct,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory-mb", type=int, default=0, help="RLIMIT_AS in MiB; 0 leaves it unlimited")
    args = parser.parse_args(argv)

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _drop_own_directory_from_path()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    # math-verify warns once per process that its timeouts are off: that is deliberate here.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    verifier = _Verifier()
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
                reply = _handle(verifier, request, out)
            except BrokenPipeError:
                raise
            except Exception as exc:  # reported to the parent, which flags the sample as worker_error
                reply = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            _write_frame(out, reply)
    except BrokenPipeError:
        return 0  # the parent went away (exit, or it killed the pool while we were starting)


if __name__ == "__main__":
    sys.exit(main())
