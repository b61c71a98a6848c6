"""Per-call latency of math rewards under concurrent callers, with hanging responses mixed in, side by side.

verl's reward loop calls ``compute_score`` from several threads at once. This benchmark gives ``--threads``
caller threads (default 8) the same workload each: ``--normal`` ordinary GRPO-like responses per thread (a few
thousand characters of reasoning and a boxed answer, from ``reward_throughput.make_batch``) with
``--adversarial`` responses per thread spread among them whose answer keeps sympy busy for minutes (a power
tower, symbolic 8x8 and 9x9 determinants, 60-90 nested ``\\frac``, 300-450 nested braces, 16 nested
parentheses). All threads start together; every call's latency is recorded.

Scorers (each runs in its own child process, so a hung one cannot slow the next):

* ``cures``: ``cures_verl.reward.math_verify.compute_score(..., timeout=T, num_workers=W, use_cache=False)``
  on :class:`cures_verl.reward.pool.VerifierPool`, for each ``--workers`` value.
* ``cures-pebble``: the same reward on a ``pebble.ProcessPool`` of ``W`` workers with per-task timeouts, the
  library alternative to ``pool.py`` (:class:`PebblePool` below: a ``forkserver`` context with math-verify
  preloaded, so that a replacement worker starts in milliseconds, ``SIGTERM`` at its default action so that a
  kill does not wait for a Python signal handler, and the call's deadline counting the wait for a worker, as
  in ``pool.py``). Needs ``pip install pebble``; skipped without it.
* ``math-verify``: ``math_verify.parse``/``verify`` called directly in the calling thread (math-verify's
  ``signal.alarm`` timeouts only work on the main thread, so they are off, as any threaded caller must do).
* ``verl-default``: ``verl.utils.reward_score.default_compute_score("lighteval/MATH", ...)``, verl's default
  math reward (``math_reward``: string normalisation, no sympy).
* ``verl-math-verify``: ``verl.utils.reward_score.math_verify.compute_score(..., timeout=T)``: a 4-process spawn
  ``ProcessPoolExecutor`` whose workers use math-verify's own ``signal.alarm`` timeouts.

Columns: ``load`` is the 1-minute load average when the row started; ``max s`` the slowest call of all;
``>T+1s`` the calls slower than the timeout plus 1 s; ``p50``/``p99``/``max`` are over the ordinary calls;
``t/o`` counts ordinary calls reported as timed out (scored 0 without being graded), ``adv t/o`` the hanging ones
that were; ``no reply`` counts calls that had not returned when the scorer was stopped ``--limit`` seconds
into its run; ``restarts`` counts worker processes killed and replaced. Pool start-up is excluded (every pool
is warmed first, the cures pool with one burst of calls from every thread, after which its warm standbys are
ready). Rounds are interleaved and their calls pooled. Run::

    python -m cures_verl.experiments.reward.latency  # 8 threads x (40 + 2) calls, timeout 5 s, 4 and 8 workers
    python -m cures_verl.experiments.reward.latency --scorers cures cures-pebble --rounds 2
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cures_verl.experiments.reward.throughput import make_batch

SCORERS = ("cures", "cures-pebble", "math-verify", "verl-default", "verl-math-verify")
GOLD = "7"


def _symbolic_matrix(size: int) -> str:
    rows = ("&".join(f"x_{{{i * size + j}}}" for j in range(size)) for i in range(size))
    return "\\begin{pmatrix}" + "\\\\".join(rows) + "\\end{pmatrix}"


# Boxed answers that keep sympy busy for minutes (each is killed at the deadline by the cures pool).
ADVERSARIAL_ANSWERS = [
    "7^{7^{7^{7}}}",  # power tower
    "\\det" + _symbolic_matrix(9),  # 9! symbolic terms
    "\\frac{" * 90 + "1" + "}{2}" * 90,  # deeply nested LaTeX
    "{" * 450 + "1" + "}" * 450,  # deeply nested brace groups
    "(" * 16 + "1" + ")" * 16,  # latex2sympy is exponential in nested parentheses
    "\\det" + _symbolic_matrix(8),
    "\\frac{" * 60 + "1" + "}{2}" * 60,
    "{" * 300 + "1" + "}" * 300,
]


@dataclass(frozen=True)
class Call:
    response: str
    gold: str
    adversarial: bool


def workload(args: argparse.Namespace) -> list[list[Call]]:
    """One list of calls per thread: ordinary ones with the adversarial ones evenly spread, offset per thread."""
    normal = make_batch(args.threads * args.normal, 8, args.reasoning_chars, args.seed)
    per_thread: list[list[Call]] = []
    for thread in range(args.threads):
        calls = [Call(s.response, s.gold, False) for s in normal[thread * args.normal : (thread + 1) * args.normal]]
        total = args.normal + args.adversarial
        for k in range(args.adversarial):
            position = int((k + (thread + 0.5) / args.threads) * total / max(1, args.adversarial))
            answer = ADVERSARIAL_ANSWERS[(thread + k) % len(ADVERSARIAL_ANSWERS)]
            text = normal[0].response.split("Therefore")[0] + f"Therefore the answer is $\\boxed{{{answer}}}$."
            calls.insert(min(position, len(calls)), Call(text, GOLD, True))
        per_thread.append(calls)
    return per_thread


# ------------------------------------------------------------------------------------------- the pebble pool


def _pebble_worker_init(memory_mb: int) -> None:
    # pebble installs a Python SIGTERM handler, which cannot run while sympy is inside one long C call (a big
    # integer power); the default action ends the process at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import logging

    from cures_verl.reward import _worker

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _worker._VERIFIER = _worker._Verifier()  # type: ignore[attr-defined]
    if memory_mb > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))


def _pebble_task(request: dict[str, Any]) -> dict[str, Any]:
    from cures_verl.reward import _worker

    return _worker._handle(_worker._VERIFIER, request, io.BytesIO())  # type: ignore[attr-defined]


class PebblePool:
    """What ``VerifierPool`` would be on ``pebble.ProcessPool``: same ``submit`` contract, queueing included."""

    def __init__(self, num_workers: int, memory_limit_mb: int = 2048) -> None:
        import multiprocessing

        import pebble

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["math_verify", "cures_verl.reward._worker"])
        self.num_workers = num_workers
        self.closed = False
        self.restarts = 0
        self._pool = pebble.ProcessPool(
            max_workers=num_workers, initializer=_pebble_worker_init, initargs=(memory_limit_mb,), context=context
        )

    def submit(self, request: dict[str, Any], *, timeout: float) -> Any:
        from concurrent.futures import CancelledError
        from concurrent.futures import TimeoutError as FutureTimeout

        from pebble import ProcessExpired

        from cures_verl.reward.pool import VerifyOutcome

        deadline = time.monotonic() + timeout
        future = self._pool.schedule(_pebble_task, args=(request,), timeout=timeout)
        try:
            reply = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except (FutureTimeout, CancelledError):
            future.cancel()  # type: ignore[no-untyped-call]  # pebble stops a running task's worker
            self.restarts += 1
            return VerifyOutcome("timeout", detail=f"no reply in {timeout:g} s")
        except ProcessExpired as exc:
            self.restarts += 1
            return VerifyOutcome("crashed", detail=str(exc))
        except Exception as exc:
            return VerifyOutcome("error", detail=f"{type(exc).__name__}: {exc}")
        return VerifyOutcome("ok", reply=reply, gold_parsed=bool(reply.get("gold_parsed")))

    def wait_ready(self, timeout: float) -> bool:
        warm = {"golds": ["\\boxed{1}"], "pred": "\\boxed{1}", "kind": "boxed"}
        futures = [self._pool.schedule(_pebble_task, args=(warm,)) for _ in range(4 * self.num_workers)]
        return all(future.result(timeout=timeout)["correct"] for future in futures)

    def shutdown(self) -> None:
        self.closed = True
        self._pool.stop()  # type: ignore[no-untyped-call]


# ----------------------------------------------------------------------------------------------- the scorers


def make_scorer(name: str, args: argparse.Namespace) -> Callable[[Call], tuple[float, bool]]:
    """Return ``score(call) -> (score, timed_out)`` with its process pool (if any) started and warmed."""
    if name in ("cures", "cures-pebble"):
        from cures_verl.reward import math_verify as cures

        workers = args.workers[0]
        if name == "cures-pebble":
            cures._STATE.pool = PebblePool(workers)  # type: ignore[assignment]
        elif args.max_standby is not None:
            from cures_verl.reward.pool import VerifierPool

            cures._STATE.pool = VerifierPool(num_workers=workers, max_standby=args.max_standby)
        pool = cures._get_pool(workers)
        assert pool.wait_ready(120), "the worker pool did not start"
        if name == "cures":  # one burst from every thread: the pool sizes its warm standbys to the callers it saw
            from concurrent.futures import ThreadPoolExecutor

            warm = {"golds": ["\\boxed{1}"], "pred": "\\boxed{1}", "kind": "boxed"}
            with ThreadPoolExecutor(args.threads) as executor:
                list(executor.map(lambda _: pool.submit(warm, timeout=60), range(4 * args.threads)))
            assert pool.wait_ready(120), "the warm standbys did not start"

        def cures_score(call: Call) -> tuple[float, bool]:
            result = cures.compute_score(
                data_source="bench",
                solution_str=call.response,
                ground_truth=call.gold,
                timeout=args.timeout,
                num_workers=workers,
                use_cache=False,
            )
            return result["score"], result["timeout"] == 1.0

        return cures_score

    if name == "math-verify":
        import logging

        from math_verify import parse, verify  # type: ignore[import-untyped]

        logging.getLogger("math_verify").setLevel(logging.ERROR)

        def direct_score(call: Call) -> tuple[float, bool]:
            gold = parse(f"\\boxed{{{call.gold}}}", parsing_timeout=None)
            pred = parse(call.response, parsing_timeout=None)
            return float(bool(gold and pred and verify(gold, pred, timeout_seconds=None))), False

        return direct_score

    if name == "verl-default":
        from verl.utils.reward_score import default_compute_score

        def verl_default_score(call: Call) -> tuple[float, bool]:
            score = default_compute_score("lighteval/MATH", call.response, call.gold)  # type: ignore[no-untyped-call]
            return float(score), False

        return verl_default_score

    if name == "verl-math-verify":
        from concurrent.futures import ThreadPoolExecutor

        from verl.utils.reward_score.math_verify import compute_score as verl_math_verify

        def verl_mv_score(call: Call) -> tuple[float, bool]:
            score = verl_math_verify(call.response, call.gold, timeout_score=-1.0, timeout=args.timeout)
            return max(0.0, score), score == -1.0

        with ThreadPoolExecutor(8) as executor:  # start its 4 spawn workers before timing
            list(executor.map(verl_mv_score, [Call("\\boxed{1}", "1", False)] * 16))
        return verl_mv_score

    raise ValueError(f"unknown scorer {name!r}; choose from {SCORERS}")


def run_child(args: argparse.Namespace) -> None:
    """Run one scorer on the workload; print one JSON line per finished call, then ``done``."""
    plan = workload(args)
    score = make_scorer(args.child, args)
    lock = threading.Lock()
    barrier = threading.Barrier(args.threads)

    def caller(thread: int) -> None:
        barrier.wait()
        for index, call in enumerate(plan[thread]):
            start = time.perf_counter()
            value, timed_out = score(call)
            latency = time.perf_counter() - start
            record = {"thread": thread, "index": index, "adv": call.adversarial, "s": latency, "to": timed_out}
            record["at"] = start - began
            with lock:
                print(json.dumps(record), flush=True)

    began = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(t,), daemon=True) for t in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    restarts = None
    if args.child in ("cures", "cures-pebble"):
        from cures_verl.reward import math_verify as cures

        restarts = cures.reward_stats()["worker_restarts"]
    print(json.dumps({"done": wall, "restarts": restarts}), flush=True)


# ------------------------------------------------------------------------------------------------ the parent


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def run_scorer(name: str, workers: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """Run one scorer in a child process (in its own session, so that its worker processes go with it)."""
    argv = [
        *("--threads", str(args.threads), "--normal", str(args.normal), "--adversarial", str(args.adversarial)),
        *("--timeout", str(args.timeout), "--seed", str(args.seed), "--reasoning-chars", str(args.reasoning_chars)),
        *(() if workers is None else ("--workers", str(workers))),
        *(() if args.max_standby is None else ("--max-standby", str(args.max_standby))),
    ]
    load = os.getloadavg()[0]
    command = [sys.executable, "-m", "cures_verl.experiments.reward.latency", "--child", name, *argv]
    # verl's scorer logs every timeout (with the whole response) on stderr: keep it out of the table.
    errors = tempfile.TemporaryFile(mode="w+")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
    records: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    reader_done = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("{"):
                record = json.loads(line)
                if "done" in record:
                    final.update(record)
                    break
                records.append(record)
        reader_done.set()

    threading.Thread(target=read, daemon=True).start()
    stop_at = time.monotonic() + 180 + args.limit  # start-up (pool warm-up) gets 180 s, the timed part --limit
    timing = False
    while not reader_done.wait(0.2) and time.monotonic() < stop_at and child.poll() is None:
        if records and not timing:
            timing = True
            stop_at = time.monotonic() - records[0]["s"] + args.limit
    reader_done.wait(1)
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
    if not final:  # stopped at --limit, or crashed: show the end of what it said
        errors.seek(0)
        tail = errors.read()[-600:].strip()
        print(f"  {name} stopped after {len(records)} calls" + (f"; stderr ends: ...{tail}" if tail else ""))
    errors.close()
    wall = final.get("done", math.nan)
    return {"records": list(records), "wall": wall, "restarts": final.get("restarts"), "load": load}


def summarise(label: str, runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Pool the calls of a configuration's rounds into one table row."""
    records = [record for run in runs for record in run["records"]]
    expected = len(runs) * args.threads * (args.normal + args.adversarial)
    normal = [r["s"] for r in records if not r["adv"]]
    every = [r["s"] for r in records]
    restarts = [run["restarts"] for run in runs if run["restarts"] is not None]
    return {
        "scorer": label,
        "load": statistics.mean(run["load"] for run in runs),
        "wall": statistics.median(run["wall"] for run in runs),
        "max": max(every, default=math.nan),
        "over": sum(s > args.timeout + 1.0 for s in every),
        "p50": percentile(normal, 50),
        "p99": percentile(normal, 99),
        "normal_max": max(normal, default=math.nan),
        "normal_timeouts": sum(r["to"] for r in records if not r["adv"]),
        "adv_timeouts": sum(r["to"] for r in records if r["adv"]),
        "no_reply": expected - len(records),
        "restarts": sum(restarts) if restarts else None,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8, help="caller threads (default 8)")
    parser.add_argument("--normal", type=int, default=40, help="ordinary calls per thread (default 40)")
    parser.add_argument("--adversarial", type=int, default=2, help="hanging calls per thread (default 2)")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-call timeout, as the reward's default (5)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[4, 8], help="worker processes of the cures pools (default 4 8)"
    )
    parser.add_argument("--max-standby", type=int, help="VerifierPool's max_standby (default: the pool's own)")
    parser.add_argument("--reasoning-chars", type=int, default=3000, help="reasoning text per response")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; their calls are pooled")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds before a scorer's run is stopped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scorers", nargs="+", default=list(SCORERS), choices=SCORERS, help="which to run")
    parser.add_argument("--child", choices=SCORERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args)
        return

    if "cures-pebble" in args.scorers and importlib.util.find_spec("pebble") is None:
        print("pebble is not installed (pip install pebble): skipping cures-pebble")
        args.scorers.remove("cures-pebble")
    configs: list[tuple[str, str, int | None]] = []
    for name in args.scorers:
        if name in ("cures", "cures-pebble"):
            configs += [(f"{name} ({workers} w)", name, workers) for workers in args.workers]
        else:
            configs.append((name, name, None))
    print(
        f"{args.threads} threads x ({args.normal} ordinary + {args.adversarial} hanging) calls, timeout "
        f"{args.timeout:g} s, {os.cpu_count()} CPUs, {args.rounds} round(s)"
    )
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in configs}
    for round_index in range(args.rounds):  # interleaved, so that drifting machine load hits every row alike
        for label, name, workers in configs:
            run = run_scorer(name, workers, args)
            runs[label].append(run)
            print(f"  round {round_index + 1} {label}: {len(run['records'])} calls, {run['wall']:.1f} s", flush=True)
    rows = [summarise(label, runs[label], args) for label, _, _ in configs]

    print()
    print(f"{'':<22} {'':>5} {'':>6} {'all calls':^16} {'ordinary calls':^32}")
    print(
        f"{'scorer (workers)':<22} {'load':>5} {'wall s':>6} {'max s':>7} {'>T+1s':>6} {'p50 s':>7} {'p99 s':>7} "
        f"{'max s':>7} {'t/o':>6} {'adv t/o':>7} {'no reply':>8} {'restarts':>8}"
    )
    for row in rows:
        restarts = "" if row["restarts"] is None else str(row["restarts"])
        print(
            f"{row['scorer']:<22} {row['load']:>5.1f} {row['wall']:>6.1f} {row['max']:>7.2f} {row['over']:>6} "
            f"{row['p50']:>7.3f} {row['p99']:>7.3f} {row['normal_max']:>7.2f} {row['normal_timeouts']:>6} "
            f"{row['adv_timeouts']:>7} {row['no_reply']:>8} {restarts:>8}"
        )


if __name__ == "__main__":
    main()
