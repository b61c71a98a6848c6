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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("math_verify")

from cures_verl.reward import pool as pool_module  # noqa: E402
from cures_verl.reward.pool import VerifierPool  # noqa: E402

OK_REQUEST = {"golds": ["\\boxed{\\frac{1}{2}}"], "pred": "\\boxed{0.5}", "kind": "boxed"}
# The gold parses; verifying it against this prediction evaluates 10^(10^10)! and never finishes.
HANGING_REQUEST = {"golds": ["\\boxed{1}"], "pred": "\\boxed{10^{10^{10}}!}", "kind": "boxed"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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


def test_a_request_past_its_deadline_kills_the_worker_and_a_fresh_one_serves_the_next(pool: VerifierPool) -> None:
    (old_pid,) = pool.worker_pids()
    restarts = pool.restarts
    start = time.monotonic()
    outcome = pool.submit(HANGING_REQUEST, timeout=1.0)
    elapsed = time.monotonic() - start
    assert outcome.status == "timeout"
    assert outcome.gold_parsed is True  # the gold stage finished; the prediction is what hung
    assert 1.0 <= elapsed < 4.0  # the deadline, then SIGKILL and reaping
    assert not _alive(old_pid)  # killed and reaped, not left computing
    assert pool.restarts == restarts + 1
    # With a single slot, the next request can only succeed on a replacement worker.
    outcome = pool.submit(OK_REQUEST, timeout=30)
    assert outcome.status == "ok" and outcome.reply["correct"] is True
    (new_pid,) = pool.worker_pids()
    assert new_pid != old_pid


def test_a_worker_killed_during_a_request_is_reported_as_crashed_without_waiting_for_the_deadline(
    pool: VerifierPool,
) -> None:
    (pid,) = pool.worker_pids()
    threading.Timer(0.5, os.kill, args=(pid, signal.SIGKILL)).start()
    start = time.monotonic()
    outcome = pool.submit(HANGING_REQUEST, timeout=30)
    assert outcome.status == "crashed"
    assert time.monotonic() - start < 10
    assert pool.submit(OK_REQUEST, timeout=30).status == "ok"


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
    instance = VerifierPool(num_workers=2)
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
    [({"num_workers": 0}, "num_workers"), ({"num_workers": 1, "memory_limit_mb": -1}, "memory_limit_mb")],
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
    # 10^(10^10) needs about 4 GiB as an integer; under a 1 GiB limit math-verify gets a MemoryError at once.
    instance = VerifierPool(num_workers=1, memory_limit_mb=1024)
    try:
        start = time.monotonic()
        outcome = instance.submit(
            {"golds": ["\\boxed{1}"], "pred": "\\boxed{\\gcd(10^{10^{10}}, 6)}", "kind": "boxed"}, timeout=60
        )
        assert outcome.status == "ok" and outcome.reply["pred_parsed"] is False
        assert time.monotonic() - start < 30
    finally:
        instance.shutdown()
