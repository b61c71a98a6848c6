"""Tests of the worker-process pool: hard deadlines, kill-and-replace, crashes, threads, shutdown, fork, orphans."""

from __future__ import annotations

import doctest
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("math_verify")

from cures_verl.reward import pool as pool_module  # noqa: E402
from cures_verl.reward.pool import VerifierPool  # noqa: E402

OK_REQUEST = {"golds": ["\\boxed{\\frac{1}{2}}"], "pred": "\\boxed{0.5}", "kind": "boxed"}


def _symbolic_determinant(size: int) -> str:
    rows = ("&".join(f"x_{{{i * size + j}}}" for j in range(size)) for i in range(size))
    return "\\det\\begin{pmatrix}" + "\\\\".join(rows) + "\\end{pmatrix}"


# The gold parses; the prediction, a symbolic 9x9 determinant (9! terms), keeps sympy busy for minutes, in Python
# code that the worker's deadline alarm can interrupt.
HANGING_REQUEST = {"golds": ["\\boxed{1}"], "pred": "\\boxed{" + _symbolic_determinant(9) + "}", "kind": "boxed"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def freeze_hanging_requests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """SIGSTOP each worker right after it is sent HANGING_REQUEST: a stand-in for a computation stuck inside one C
    call, which the worker's own deadline alarm cannot interrupt. Yields the PIDs stopped so far."""
    stopped: list[int] = []
    send = pool_module._Worker.send

    def send_then_stop(self: pool_module._Worker, obj: dict[str, object]) -> None:
        send(self, obj)
        if obj.get("pred") == HANGING_REQUEST["pred"]:
            os.kill(self.pid, signal.SIGSTOP)
            stopped.append(self.pid)

    monkeypatch.setattr(pool_module._Worker, "send", send_then_stop)
    return stopped


def test_module_doctests_pass() -> None:
    results = doctest.testmod(pool_module)
    assert results.attempted > 0
    assert results.failed == 0


@pytest.fixture(scope="module")
def shared_pool() -> Iterator[VerifierPool]:
    instance = VerifierPool(num_workers=1)
    yield instance
    instance.shutdown()


@pytest.fixture
def pool(shared_pool: VerifierPool) -> VerifierPool:
    """The module's one-worker pool, with its (possibly just replaced) worker ready."""
    assert shared_pool.wait_ready(60)
    return shared_pool


def test_a_request_past_its_deadline_is_interrupted_and_its_worker_serves_the_next(pool: VerifierPool) -> None:
    (pid,) = pool.worker_pids()
    restarts = pool.restarts
    start = time.monotonic()
    outcome = pool.submit(HANGING_REQUEST, timeout=1.0)
    elapsed = time.monotonic() - start
    assert outcome.status == "timeout"
    assert elapsed >= 1.0
    assert outcome.gold_parsed is True and not outcome.gold_hung  # the prediction is what hung, not the gold
    # The worker's alarm stopped the computation: the same process answers the next request (a single slot, and
    # the interrupted determinant would otherwise keep it busy for minutes).
    outcome = pool.submit(OK_REQUEST, timeout=30)
    assert outcome.status == "ok" and outcome.reply["correct"] is True
    assert pool.worker_pids() == [pid]
    assert pool.restarts == restarts


def test_a_worker_stuck_past_the_deadline_is_killed_and_replaced_without_delaying_the_caller(
    pool: VerifierPool, freeze_hanging_requests: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long grace period: a caller that waited for its stuck worker to be dealt with would take 8 s more.
    monkeypatch.setattr(pool_module, "_RECOVERY_GRACE", 8.0)
    restarts = pool.restarts
    start = time.monotonic()
    outcome = pool.submit(HANGING_REQUEST, timeout=1.0)
    elapsed = time.monotonic() - start
    assert outcome.status == "timeout"
    assert 1.0 <= elapsed < 7.0
    (stopped,) = freeze_hanging_requests
    # The grace period passes without a reply: the stopped worker is killed (and reaped), and replaced.
    assert _wait_until(lambda: not _alive(stopped), 60)
    assert pool.restarts == restarts + 1
    outcome = pool.submit(OK_REQUEST, timeout=60)
    assert outcome.status == "ok" and outcome.reply["correct"] is True
    assert stopped not in pool.worker_pids() and len(pool.worker_pids()) == 1


def test_waiting_for_a_free_worker_counts_against_the_deadline() -> None:
    instance = VerifierPool(num_workers=1, max_standby=0)
    try:
        assert instance.wait_ready(60)
        finished: dict[str, float] = {}

        def hang() -> None:
            instance.submit(HANGING_REQUEST, timeout=4.0)
            finished["hanging"] = time.monotonic()

        holder = threading.Thread(target=hang)
        holder.start()
        assert _wait_until(lambda: instance._idle.qsize() == 0)  # the hanging request holds the only worker
        start = time.monotonic()
        outcome = instance.submit(OK_REQUEST, timeout=1.0)
        finished["queued"] = time.monotonic()
        holder.join()
        assert outcome.status == "timeout" and "no free worker" in outcome.detail
        assert outcome.gold_parsed is None and not outcome.gold_hung  # no worker saw it: the gold is not to blame
        assert finished["queued"] - start >= 1.0
        assert finished["queued"] < finished["hanging"]  # it gave up at its own deadline, not when the worker freed
    finally:
        instance.shutdown()


def test_a_standby_worker_serves_waiting_callers_while_a_request_is_stuck() -> None:
    # One worker, held by a request that runs until its 12 s deadline. Without a standby, a caller arriving meanwhile
    # would wait for that worker past its own 10 s deadline; with one, it is served and the hanging request is
    # still running when it finishes.
    instance = VerifierPool(num_workers=1, standby_after=0.3)
    try:
        assert instance.wait_ready(60)
        finished: dict[str, float] = {}

        def hang() -> None:
            instance.submit(HANGING_REQUEST, timeout=12.0)
            finished["hanging"] = time.monotonic()

        holder = threading.Thread(target=hang)
        holder.start()
        assert _wait_until(lambda: instance._idle.qsize() == 0)
        outcome = instance.submit(OK_REQUEST, timeout=10.0)
        finished["waiting"] = time.monotonic()
        holder.join()
        assert outcome.status == "ok" and outcome.reply["correct"] is True
        assert finished["waiting"] < finished["hanging"]
        # Once the stuck request has ended, the pool shrinks back to num_workers.
        assert _wait_until(lambda: len(instance.worker_pids()) == 1, 60)
        assert instance.submit(OK_REQUEST, timeout=30).status == "ok"
    finally:
        instance.shutdown()


def test_a_warm_standby_serves_at_once_while_a_request_is_stuck_and_the_stuck_worker_is_reniced() -> None:
    # One worker plus one warm standby. A hanging request holds the worker; a caller arriving meanwhile is served by
    # the standby that was already running: no process is started for it, and it does not wait for the deadline.
    instance = VerifierPool(num_workers=1, standby_after=0.3, warm_standbys=1)
    try:
        assert instance.wait_ready(60)
        pids = instance.worker_pids()
        assert len(pids) == 2  # the lendable worker and the warm standby
        niceness = os.getpriority(os.PRIO_PROCESS, pids[0])
        finished: dict[str, float] = {}

        def hang() -> None:
            instance.submit(HANGING_REQUEST, timeout=12.0)
            finished["hanging"] = time.monotonic()

        holder = threading.Thread(target=hang)
        holder.start()
        assert _wait_until(lambda: instance._idle.qsize() == 0)  # the standby is kept aside, not lent
        assert _wait_until(lambda: instance._stuck == 1, 10)
        # the renice is visible only when the tests run below the stuck niceness (not under `nice -n 19 pytest`)
        renice_visible = niceness < pool_module._STUCK_NICENESS
        if renice_visible:
            (stuck_pid,) = [p for p in pids if os.getpriority(os.PRIO_PROCESS, p) == pool_module._STUCK_NICENESS]
        outcome = instance.submit(OK_REQUEST, timeout=10.0)
        finished["waiting"] = time.monotonic()
        assert outcome.status == "ok" and outcome.reply["correct"] is True
        assert instance.worker_pids() == pids  # served by the warm standby: no process started meanwhile
        holder.join()
        assert finished["waiting"] < finished["hanging"]
        # The stuck request ended: its worker got its priority back (or, where that is not permitted, was retired),
        # and the pool is one lendable worker plus one warm standby again.
        assert _wait_until(lambda: instance.wait_ready(0.1) and len(instance.worker_pids()) == 2, 60)
        if renice_visible and stuck_pid in instance.worker_pids():
            assert os.getpriority(os.PRIO_PROCESS, stuck_pid) == niceness
        assert instance.submit(OK_REQUEST, timeout=30).status == "ok"
    finally:
        instance.shutdown()


def test_warm_standbys_follow_the_number_of_concurrent_callers() -> None:
    # warm_standbys=None: one ready standby per caller seen at once beyond num_workers (up to max_standby).
    instance = VerifierPool(num_workers=1, max_standby=4, warm_standbys=None)
    try:
        assert instance.wait_ready(60)
        assert len(instance.worker_pids()) == 1  # no caller yet: no standby
        with ThreadPoolExecutor(max_workers=3) as executor:  # three callers at once, held by hanging requests
            outcomes = list(executor.map(lambda _: instance.submit(HANGING_REQUEST, timeout=2.0), range(3)))
        assert [outcome.status for outcome in outcomes] == ["timeout"] * 3
        assert _wait_until(lambda: instance.wait_ready(0.1) and len(instance.worker_pids()) == 3, 60)
        assert instance.submit(OK_REQUEST, timeout=30).status == "ok"
    finally:
        instance.shutdown()


def test_the_stuck_threshold_follows_the_recent_ordinary_requests() -> None:
    instance = VerifierPool(num_workers=1, standby_after=1.0)
    assert instance._stuck_after() == 1.0  # nothing answered yet: standby_after
    instance._recent_durations.extend([0.01] * 95 + [0.3] * 5)  # the 90th percentile is 0.01 s
    assert instance._stuck_after() == pool_module._MIN_STUCK_AFTER
    instance._recent_durations.extend([0.2] * 64)
    assert instance._stuck_after() == pytest.approx(0.4)
    instance._recent_durations.extend([3.0] * 64)  # a slow machine: capped at standby_after
    assert instance._stuck_after() == 1.0


def test_a_worker_left_bloated_by_an_interrupted_request_is_retired(
    pool: VerifierPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pid,) = pool.worker_pids()
    restarts = pool.restarts
    monkeypatch.setattr(pool_module._Worker, "rss_mb", lambda self: float(pool.memory_limit_mb))
    assert pool.submit(HANGING_REQUEST, timeout=1.0).status == "timeout"
    assert _wait_until(lambda: not _alive(pid), 60)
    assert pool.restarts == restarts + 1
    monkeypatch.undo()
    assert pool.submit(OK_REQUEST, timeout=60).status == "ok"
    assert pool.worker_pids() != [pid]


def test_a_worker_killed_during_a_request_is_reported_as_crashed_without_waiting_for_the_deadline(
    pool: VerifierPool,
) -> None:
    (pid,) = pool.worker_pids()
    threading.Timer(0.5, os.kill, args=(pid, signal.SIGKILL)).start()
    start = time.monotonic()
    outcome = pool.submit(HANGING_REQUEST, timeout=60)
    assert outcome.status == "crashed"
    assert time.monotonic() - start < 40  # the deadline is 60 s away: the pipe's EOF ended the wait
    assert pool.submit(OK_REQUEST, timeout=60).status == "ok"


def test_a_worker_that_died_while_idle_is_replaced_before_use(pool: VerifierPool) -> None:
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    outcome = pool.submit(OK_REQUEST, timeout=30)
    assert outcome.status == "ok"
    assert pool.worker_pids() != [pid]


def test_an_error_in_the_worker_code_is_reported_and_the_worker_is_kept(pool: VerifierPool) -> None:
    (pid,) = pool.worker_pids()
    outcome = pool.submit({"golds": [], "pred": "", "kind": "no-such-kind"}, timeout=30)
    assert outcome.status == "error" and "no-such-kind" in outcome.detail
    assert pool.worker_pids() == [pid]
    assert pool.submit(OK_REQUEST, timeout=30).status == "ok"


def test_many_threads_share_the_workers_safely_and_shutdown_kills_them() -> None:
    instance = VerifierPool(num_workers=2, standby_after=30)  # a slow request on a loaded machine is no standby case
    try:
        assert instance.wait_ready(60)
        golds = [f"\\boxed{{{k}}}" for k in range(48)]
        with ThreadPoolExecutor(max_workers=12) as executor:
            outcomes = list(
                executor.map(
                    lambda gold: instance.submit({"golds": [gold], "pred": gold, "kind": "boxed"}, timeout=60), golds
                )
            )
        assert [outcome.status for outcome in outcomes] == ["ok"] * len(golds)
        assert all(outcome.reply["correct"] for outcome in outcomes)
        pids = instance.worker_pids()
        assert len(pids) == 2 and instance.restarts == 0
    finally:
        instance.shutdown()
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="shut down"):
        instance.submit(OK_REQUEST, timeout=5)
    instance.shutdown()  # idempotent


@pytest.mark.parametrize("hang", ["interrupted", "stuck"])
def test_a_hanging_request_among_fast_ones_across_threads_leaves_the_pool_whole(
    hang: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "interrupted": the worker's alarm ends the hanging computation and the worker is reused. "stuck": the worker
    # is frozen (as if inside one long C call), so the pool must kill and replace it.
    stopped_pids: list[int] = request.getfixturevalue("freeze_hanging_requests") if hang == "stuck" else []
    monkeypatch.setattr(pool_module, "_RECOVERY_GRACE", 0.5)
    instance = VerifierPool(num_workers=2, max_standby=0)  # no standby: the pool's size is fixed, its PIDs telling
    try:
        assert instance.wait_ready(60)
        before = instance.worker_pids()
        golds = [f"\\boxed{{{k}}}" for k in range(40)]
        requests = [{"golds": [gold], "pred": gold, "kind": "boxed"} for gold in golds]
        requests.insert(3, HANGING_REQUEST)
        with ThreadPoolExecutor(max_workers=8) as executor:
            outcomes = list(
                executor.map(lambda r: instance.submit(r, timeout=3.0 if r is HANGING_REQUEST else 60.0), requests)
            )
        hanging = outcomes.pop(3)
        assert hanging.status == "timeout"
        assert [outcome.status for outcome in outcomes] == ["ok"] * len(golds)
        assert all(outcome.reply["correct"] for outcome in outcomes)
        # The pool is whole again: two ready workers, and they serve.
        assert _wait_until(lambda: instance.wait_ready(0.1) and len(instance.worker_pids()) == 2, 60)
        if hang == "stuck":
            (stopped,) = stopped_pids
            assert instance.restarts == 1
            assert stopped not in instance.worker_pids() and not _alive(stopped)
        else:
            assert instance.restarts == 0 and instance.worker_pids() == before
        assert [instance.submit(r, timeout=60).status for r in requests[:3]] == ["ok"] * 3
    finally:
        instance.shutdown()


def test_workers_that_cannot_start_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "_WORKER_SCRIPT", os.path.join(os.path.dirname(__file__), "no_such_worker.py"))
    instance = VerifierPool(num_workers=1, max_start_attempts=1, startup_timeout=30)
    try:
        with pytest.raises(RuntimeError, match="no math-verify worker could be started.*math-verify"):
            instance.submit(OK_REQUEST, timeout=5)
    finally:
        instance.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_workers": 0}, "num_workers"),
        ({"num_workers": 1, "memory_limit_mb": -1}, "memory_limit_mb"),
        ({"num_workers": 1, "max_standby": 1, "warm_standbys": 2}, "warm_standbys must be None .* max_standby=1"),
    ],
)
def test_bad_pool_arguments_raise(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VerifierPool(**kwargs)


FORK_SCRIPT = """
import os, sys
from cures_verl.reward import math_verify as reward

assert reward.compute_score(data_source="t", solution_str="\\\\boxed{1}", ground_truth="1")["score"] == 1.0
parent_pool = reward._STATE.pool
pid = os.fork()
if pid == 0:  # child: report whether the module-level pool was dropped, then leave at once
    os._exit(0 if reward._STATE.pool is None else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert reward._STATE.pool is parent_pool and all(os.path.exists(f"/proc/{p}") for p in parent_pool.worker_pids())
assert reward.compute_score(data_source="t", solution_str="\\\\boxed{2}", ground_truth="2")["score"] == 1.0
print("fork-ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_inherit_the_parents_pool() -> None:
    # In a fresh interpreter: forking pytest itself (threads, maybe a Ray client) is not safe.
    done = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fork-ok"


def test_an_orphaned_busy_worker_is_stopped_by_its_cpu_limit() -> None:
    # Run the worker by hand, as the pool does, and give it a hanging request with a 1 s CPU budget. Nobody kills
    # it: RLIMIT_CPU must (SIGXCPU), which is what happens when the parent dies mid-request.
    proc = subprocess.Popen(
        [sys.executable, pool_module._WORKER_SCRIPT, "--memory-mb", "2048"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        (size,) = struct.unpack(">I", proc.stdout.read(4))
        assert json.loads(proc.stdout.read(size)) == {"ready": True}
        payload = json.dumps({**HANGING_REQUEST, "cpu_seconds": 1}).encode()
        proc.stdin.write(struct.pack(">I", len(payload)) + payload)
        proc.stdin.flush()
        code = proc.wait(timeout=20)
        assert code == -signal.SIGXCPU
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_idle_worker_exits_when_its_parent_closes_the_pipe() -> None:
    proc = subprocess.Popen([sys.executable, pool_module._WORKER_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        (size,) = struct.unpack(">I", proc.stdout.read(4))
        proc.stdout.read(size)
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_worker_imports_the_math_verify_package_not_our_module_of_that_name(pool: VerifierPool) -> None:
    # The worker script lives in cures_verl/reward/, next to cures_verl/reward/math_verify.py; it must still get
    # the real math_verify package (the wrong one would fail to start or answer differently).
    outcome = pool.submit(OK_REQUEST, timeout=60)
    assert outcome.status == "ok"
    assert outcome.reply == {"gold_parsed": True, "pred_extracted": True, "pred_parsed": True, "correct": True}


def test_memory_hungry_answers_hit_the_address_space_limit_instead_of_the_host() -> None:
    # 10^(10^10) needs about 4 GiB as an integer; under a 1 GiB limit math-verify gets a MemoryError at once, and
    # the worker answers (without the limit it computes until the deadline: status "timeout").
    instance = VerifierPool(num_workers=1, memory_limit_mb=1024)
    try:
        outcome = instance.submit(
            {"golds": ["\\boxed{1}"], "pred": "\\boxed{\\gcd(10^{10^{10}}, 6)}", "kind": "boxed"}, timeout=20
        )
        assert outcome.status == "ok" and outcome.reply["pred_parsed"] is False
    finally:
        instance.shutdown()
