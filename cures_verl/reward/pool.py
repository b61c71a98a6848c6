"""A pool of math-verify worker processes with a hard deadline per call, waiting for a worker included.

Why not :class:`concurrent.futures.ProcessPoolExecutor` (what verl 0.9.1's
``verl/utils/reward_score/math_verify.py`` uses): ``future.result(timeout)`` stops *waiting*, but the worker keeps
computing. A response such as ``\\boxed{10^{10^{10}}}`` then holds that pool slot for good, and after a few of
them every later reward call waits behind hung workers. The executor cannot kill a single worker either (killing
one breaks the whole pool). Why not pebble's ``ProcessPool`` (per-task timeouts, kills and replaces a worker):
``cures_verl.experiments.reward.latency`` measured it beside this pool (8 threads, hanging responses
mixed in): pebble kills every timed-out worker (and the worker of every request given up while queued) and
starts a new one, and ordinary calls waited for those restarts (with 8 workers: p99 4.0 s and 2 of 640 ordinary
calls timed out, against 0.83 s and none here; docs/reward.md has the figures). It also needs ``fork`` (unsafe
in a threaded Ray actor) or a ``spawn``/``forkserver`` start, which re-imports the caller's ``__main__``; it
pickles replies; and it cannot report that the gold was parsed before a request hung.

Here each worker is a plain child process talking over two pipes. Design points:

* **Deadline.** :meth:`VerifierPool.submit` returns ``timeout`` seconds after the call at the latest: waiting for
  an idle worker counts against the deadline, and nothing else happens on the caller's thread once it passes.
* **Interrupt, else kill.** Each request carries the seconds left to its deadline, and the worker's own
  ``SIGALRM`` timer interrupts a computation still running then (sympy is mostly Python code); the worker
  answers ``{"timeout": true}`` and goes back to the pool, so a hanging response costs no restart. A worker
  that does not answer within ``_RECOVERY_GRACE`` seconds after the deadline (stuck inside one long C call, such
  as a huge integer power) is ``SIGKILL``-ed, and a successor started. Both happen on background threads, so no
  caller waits for them. A worker left holding more than half its memory limit after an interrupted request is
  retired too.
* **Standby workers.** A request running much longer than the recent ordinary ones (twice the 90th percentile of
  the last 64 answered requests, at least ``_MIN_STUCK_AFTER`` and at most ``standby_after`` seconds) probably
  hangs until its deadline: it is *stuck*. Its worker is reniced to ``_STUCK_NICENESS`` (19), so that the
  hanging computation leaves the CPU to ordinary requests, and set back when the request ends (or retired, where
  raising a priority is not permitted). Each stuck request lets one more request run at once (at most
  ``max_standby`` more), so that callers queued behind hanging responses need not sit out their deadlines. The
  extra requests run on *warm standbys*, ready workers kept aside and lent only then, so that they serve at once
  instead of after a start-up of a second or more under load (``warm_standbys``: a fixed number, or ``None`` for
  one per concurrent caller beyond ``num_workers``, up to ``max_standby``: every caller then has a process to
  stand in if all others hang), or, beyond those and while callers wait, on standbys started then. When a stuck
  request ends, its worker goes back to the standbys (or is retired) and the pool lends ``num_workers`` again.
* **Start method.** Workers are started with :class:`subprocess.Popen` running ``_worker.py`` in a fresh
  interpreter (no ``fork``): safe from any thread, inside Ray actors, and with no re-import of the caller's
  ``__main__`` (so a user script without an ``if __name__ == "__main__"`` guard works, unlike
  ``multiprocessing``'s spawn). Requests and replies are small JSON frames; no pickle crosses the boundary.
* **Laziness and threads.** Nothing starts until the first :meth:`VerifierPool.submit`. Any number of threads may
  call :meth:`~VerifierPool.submit` at once; each borrows one idle worker from a queue, so a worker serves one
  request at a time. Only ready workers (math-verify imported, one answer graded to warm it up) are lent.
* **Fork.** A forked child must not use its parent's workers (their pipes are shared). The module-level pool in
  :mod:`cures_verl.reward.math_verify` is dropped in the child by ``os.register_at_fork`` and rebuilt lazily.
* **Exit.** :meth:`VerifierPool.shutdown` kills every worker; :mod:`cures_verl.reward.math_verify` registers it
  with :mod:`atexit`. Orphans also stop on their own: an idle worker exits on EOF, and a busy one hits its
  ``RLIMIT_CPU`` (see ``_worker.py``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["VerifyOutcome", "VerifierPool"]

logger = logging.getLogger(__name__)

_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")
_HEADER = struct.Struct(">I")
_MAX_REPLY_BYTES = 1024 * 1024
# Seconds after a missed deadline for the worker's own alarm to end the request (so the worker is reused).
_RECOVERY_GRACE = 1.0
# Seconds between checks while a caller waits for a worker; after the first, the caller counts as waiting.
_WAIT_STEP = 0.2
# Bounds of the stuck threshold: twice the 90th percentile of the last _RECENT_DURATIONS answered requests, within
# [_MIN_STUCK_AFTER, standby_after]. Ordinary requests take milliseconds to a few tenths of a second.
_MIN_STUCK_AFTER = 0.25
# Niceness of a worker whose request is stuck: the CPU goes to the ordinary requests first.
_STUCK_NICENESS = 19
_RECENT_DURATIONS = 64


class _WorkerDied(Exception):
    """The worker closed its pipe, sent garbage or could not be written to."""


@dataclass(frozen=True)
class VerifyOutcome:
    """What happened to one request.

    Attributes:
        status: ``"ok"`` (``reply`` holds the worker's answer), ``"timeout"`` (the deadline passed, while the
            request waited for a worker or ran; a running one is interrupted, or its worker killed and replaced),
            ``"crashed"`` (the worker died or broke the protocol; replaced) or ``"error"`` (the worker's own code
            raised; ``detail`` has the message; the worker is kept).
        reply: The worker's reply frame when ``status == "ok"``.
        gold_parsed: Whether the worker reported the gold as parsed before the request ended, or ``None`` if it
            never got that far (see ``gold_hung`` for whether that means the gold hangs).
        detail: A short human-readable explanation for the non-``ok`` statuses.
        gold_hung: For a timeout: a worker spent at least half the timeout on the request without getting
            through the gold, so the gold itself hangs. False when the deadline passed while the request was
            still waiting for a free worker, or left the worker too little time to tell.
    """

    status: Literal["ok", "timeout", "crashed", "error"]
    reply: dict[str, Any] = field(default_factory=dict)
    gold_parsed: bool | None = None
    detail: str = ""
    gold_hung: bool = False


class _Worker:
    """One child process and the two pipe ends we use to talk to it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is None or proc.stdout is None:
            raise ValueError("the worker process must be started with stdin=PIPE and stdout=PIPE")
        self.proc = proc
        self._stdin = proc.stdin
        self._stdout_fd = proc.stdout.fileno()
        self._buffer = bytearray()
        self._poller = select.poll()  # poll, not select: Ray processes easily exceed FD_SETSIZE descriptors
        self._poller.register(self._stdout_fd, select.POLLIN)
        self._niceness: int | None = None  # the priority before lower_priority(), while lowered

    def lower_priority(self) -> None:
        """Renice the process to ``_STUCK_NICENESS``, so a hanging computation leaves the CPU to ordinary ones."""
        try:
            niceness = os.getpriority(os.PRIO_PROCESS, self.pid)
            os.setpriority(os.PRIO_PROCESS, self.pid, max(niceness, _STUCK_NICENESS))
        except OSError as exc:  # gone already, or not allowed: it keeps its priority
            logger.debug("cannot renice math-verify worker %d: %s", self.pid, exc)
            return
        self._niceness = niceness

    def restore_priority(self) -> bool:
        """Undo :meth:`lower_priority`; False if it cannot be undone (raising priority needs ``CAP_SYS_NICE``)."""
        if self._niceness is None:
            return True
        try:
            os.setpriority(os.PRIO_PROCESS, self.pid, self._niceness)
        except OSError:
            return False
        self._niceness = None
        return True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, obj: dict[str, Any]) -> None:
        payload = json.dumps(obj, ensure_ascii=True).encode("ascii")
        try:
            self._stdin.write(_HEADER.pack(len(payload)) + payload)
            self._stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise _WorkerDied(f"cannot write to worker {self.pid}: {exc}") from exc

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """Return the next frame, or ``None`` once ``time.monotonic()`` passes ``deadline``.

        Bytes read before the deadline stay buffered, so a later call picks up the same frame where this one left.
        """
        if not self._fill(_HEADER.size, deadline):
            return None
        (size,) = _HEADER.unpack_from(self._buffer)
        if size > _MAX_REPLY_BYTES:
            raise _WorkerDied(f"worker {self.pid} sent a {size}-byte frame")
        if not self._fill(_HEADER.size + size, deadline):
            return None
        payload = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
        del self._buffer[: _HEADER.size + size]
        try:
            frame = json.loads(payload)
        except ValueError as exc:
            raise _WorkerDied(f"worker {self.pid} sent malformed JSON: {exc}") from exc
        if not isinstance(frame, dict):
            raise _WorkerDied(f"worker {self.pid} sent a non-object frame")
        return frame

    def _fill(self, size: int, deadline: float) -> bool:
        """Read until ``size`` bytes are buffered; False if the deadline passes first."""
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self._poller.poll(max(1, int(remaining * 1000) + 1)):
                continue
            try:
                chunk = os.read(self._stdout_fd, 65536)
            except OSError as exc:
                raise _WorkerDied(f"cannot read from worker {self.pid}: {exc}") from exc
            if not chunk:
                raise _WorkerDied(f"worker {self.pid} exited (code {self.proc.poll()})")
            self._buffer += chunk
        return True

    def rss_mb(self) -> float | None:
        """Resident memory of the process in MiB, or ``None`` where ``/proc`` cannot tell."""
        try:
            with open(f"/proc/{self.pid}/statm", encoding="ascii") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def kill(self) -> None:
        """SIGKILL the process, reap it and close our pipe ends. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.error("math-verify worker %d did not exit 10 s after SIGKILL", self.pid)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError as exc:
                    logger.debug("closing a pipe of worker %d: %s", self.pid, exc)


class VerifierPool:
    """A pool of math-verify worker processes; see the module docstring for the design.

    Args:
        num_workers: Number of worker processes, >= 1.
        memory_limit_mb: ``RLIMIT_AS`` of each worker in MiB; 0 leaves memory unlimited.
        startup_timeout: Seconds a new worker may take to import math-verify and report ready.
        max_start_attempts: Attempts per slot before the slot is given up (with a logged error).
        standby_after: The longest a request may run before it counts as stuck (see the module docstring; the
            threshold is twice the 90th percentile of recent answered requests, at least 0.25 s, at most this,
            and at most half the request's timeout).
        max_standby: Most standby workers at a time, beyond ``num_workers``; default ``num_workers``. 0 turns
            standbys off (a stuck worker is replaced only when its request ends).
        warm_standbys: Standby workers kept ready and lent only while requests are stuck; at most ``max_standby``.
            ``None``: one per concurrent caller beyond ``num_workers`` (the most callers seen in :meth:`submit` at
            once), so that a caller finds a ready worker even when every other caller's request hangs. Each costs
            an idle process (about 60 MB). Default 0.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> pool = VerifierPool(num_workers=1)
        >>> outcome = pool.submit({"golds": ["\\\\boxed{1/2}"], "pred": "\\\\boxed{0.5}", "kind": "boxed"}, timeout=30)
        >>> outcome.status, outcome.reply["correct"]
        ('ok', True)
        >>> pool.shutdown()
    """

    def __init__(
        self,
        *,
        num_workers: int,
        memory_limit_mb: int = 2048,
        startup_timeout: float = 120.0,
        max_start_attempts: int = 3,
        standby_after: float = 1.0,
        max_standby: int | None = None,
        warm_standbys: int | None = 0,
    ) -> None:
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
            raise ValueError(f"num_workers must be an integer >= 1, got {num_workers!r}")
        if not isinstance(memory_limit_mb, int) or memory_limit_mb < 0:
            raise ValueError(f"memory_limit_mb must be an integer >= 0 (0 = unlimited), got {memory_limit_mb!r}")
        if not startup_timeout > 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        if max_start_attempts < 1:
            raise ValueError(f"max_start_attempts must be >= 1, got {max_start_attempts!r}")
        if not standby_after > 0:
            raise ValueError(f"standby_after must be > 0 seconds, got {standby_after!r}")
        max_standby = num_workers if max_standby is None else max_standby
        if not isinstance(max_standby, int) or max_standby < 0:
            raise ValueError(f"max_standby must be an integer >= 0, got {max_standby!r}")
        if warm_standbys is not None and (
            not isinstance(warm_standbys, int)
            or isinstance(warm_standbys, bool)
            or not 0 <= warm_standbys <= max_standby
        ):
            raise ValueError(
                f"warm_standbys must be None (one per concurrent caller) or an integer between 0 and "
                f"max_standby={max_standby}, got {warm_standbys!r}"
            )
        self.num_workers = num_workers
        self.memory_limit_mb = memory_limit_mb
        self._startup_timeout = float(startup_timeout)
        self._max_start_attempts = max_start_attempts
        self._standby_after = float(standby_after)
        self._max_standby = max_standby
        self._warm_standbys = warm_standbys
        self._callers = 0  # threads inside submit()
        self._peak_callers = 0
        self._spares: list[_Worker] = []  # ready standbys kept out of the idle queue until a request is stuck
        self._recent_durations: deque[float] = deque(maxlen=_RECENT_DURATIONS)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()  # ready workers: idle, busy or spare
        self._starting = 0  # slots whose worker is being started
        self._stuck = 0  # requests past standby_after, each holding a worker
        self._standbys = 0  # extra workers lent for stuck requests (spares promoted, or started while callers waited)
        self._waiting = 0  # callers that have waited _WAIT_STEP or more for a worker
        self._started = False
        self._closed = False
        self._dead_slots = 0
        self._last_start_error = ""
        self.restarts = 0
        """Workers killed or lost and replaced so far (stuck past the deadline, crashed, left bloated by a timeout, or
        reniced while stuck where their priority cannot be set back)."""

    # ----------------------------------------------------------------------------------------------- public API

    def submit(self, request: dict[str, Any], *, timeout: float) -> VerifyOutcome:
        """Run one request on an idle worker; give up, and kill that worker, ``timeout`` seconds after the call.

        The deadline starts when this method is called: waiting for an idle worker counts against it, so a call
        returns within about ``timeout`` seconds however many other requests are queued or hanging.

        Args:
            request: The JSON-serialisable request frame (see ``_worker.py``).
            timeout: Deadline for the request, in seconds from this call.

        Returns:
            The :class:`VerifyOutcome`; ``"timeout"`` also when no worker came free before the deadline.

        Raises:
            RuntimeError: If the pool is shut down, or no worker can be started at all (math-verify missing in
                this interpreter's environment, for instance).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._callers += 1
            more_callers = self._callers > self._peak_callers
            self._peak_callers = max(self._peak_callers, self._callers)
        try:
            self._ensure_started()
            if more_callers and self._warm_standbys is None:
                self._top_up()  # one more warm standby for the new caller
            return self._run(request, timeout, deadline)
        finally:
            with self._lock:
                self._callers -= 1

    def _run(self, request: dict[str, Any], timeout: float, deadline: float) -> VerifyOutcome:
        worker = self._acquire(deadline)
        if worker is None:
            return VerifyOutcome("timeout", detail=f"no free worker in {timeout:g} s")
        lent_at = time.monotonic()
        stuck_at = lent_at + min(self._stuck_after(), timeout / 2)
        stuck = False
        gold_parsed: bool | None = None
        try:
            worker.send({**request, "seconds": deadline - time.monotonic(), "cpu_seconds": int(timeout) + 2})
            while True:
                frame = worker.receive(deadline if stuck else min(stuck_at, deadline))
                if frame is None and not stuck and time.monotonic() < deadline:
                    stuck = True
                    self._on_stuck(worker)
                    continue
                if frame is None or frame.get("timeout") is True:
                    hung = gold_parsed is None and time.monotonic() - lent_at >= timeout / 2
                    detail = f"no reply in {timeout:g} s"
                    if frame is None:  # the worker's own alarm should end the computation in a moment
                        self._recover_async(worker, stuck)
                    else:
                        self._keep_if_healthy(worker, stuck)
                    return VerifyOutcome("timeout", gold_parsed=gold_parsed, detail=detail, gold_hung=hung)
                if frame.get("stage") == "gold":
                    gold_parsed = bool(frame.get("gold_parsed"))
                    continue
                with self._lock:  # answered requests, stuck ones included: slow but legitimate ones raise the bar
                    self._recent_durations.append(time.monotonic() - lent_at)
                self._release(worker, stuck)
                if "error" in frame:
                    return VerifyOutcome("error", gold_parsed=gold_parsed, detail=str(frame["error"]))
                return VerifyOutcome("ok", reply=frame, gold_parsed=gold_parsed)
        except _WorkerDied as exc:
            self._retire(worker, stuck)
            return VerifyOutcome("crashed", gold_parsed=gold_parsed, detail=str(exc))
        except BaseException:  # KeyboardInterrupt, or a bug: never hand out a worker in an unknown state
            self._retire(worker, stuck)
            raise

    def worker_pids(self) -> list[int]:
        """PIDs of the live workers (started and not yet killed), warm standbys included."""
        with self._lock:
            return sorted(worker.pid for worker in self._live)

    def wait_ready(self, timeout: float) -> bool:
        """Start the workers if needed and wait until all slots have a ready worker; True if they all do."""
        self._ensure_started()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                all_up = self._starting == 0 and len(self._live) >= self._target()
                if all_up and self._idle.qsize() + len(self._spares) >= len(self._live):
                    return True
            time.sleep(0.02)
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self) -> None:
        """Kill every worker. Later :meth:`submit` calls raise ``RuntimeError``. Safe to call twice."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
        for worker in workers:
            worker.kill()

    # ------------------------------------------------------------------------------------------------ internals

    def _ensure_started(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the math-verify worker pool was shut down; compute_score starts a new one")
            if self._started:
                return
            self._started = True
        self._top_up()

    def _acquire(self, deadline: float) -> _Worker | None:
        """An idle, live worker, or ``None`` once ``time.monotonic()`` passes ``deadline``."""
        waiting = False
        try:
            while True:
                with self._lock:
                    if self._closed:
                        raise RuntimeError("the math-verify worker pool was shut down while waiting for a worker")
                    if self._dead_slots >= self.num_workers:
                        raise RuntimeError(
                            f"no math-verify worker could be started ({self._last_start_error}); check that "
                            f"`{sys.executable} -c 'import math_verify'` works (pip install 'math-verify>=0.8')"
                        )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    worker = self._idle.get(timeout=min(_WAIT_STEP, remaining))
                except queue.Empty:
                    if not waiting:  # waited a while: count this caller as demand a standby may serve
                        waiting = True
                        with self._lock:
                            self._waiting += 1
                        self._grant_standbys()
                    continue
                if worker.proc.poll() is None:
                    return worker
                logger.warning("math-verify worker %d died while idle (code %s)", worker.pid, worker.proc.returncode)
                self._retire(worker, False)
        finally:
            if waiting:
                with self._lock:
                    self._waiting -= 1

    def _stuck_after(self) -> float:
        """Seconds after which a running request counts as stuck: twice the 90th percentile of the recent answered
        requests (at least ``_MIN_STUCK_AFTER``, at most ``standby_after``)."""
        with self._lock:
            recent = sorted(self._recent_durations)
        if not recent:
            return self._standby_after
        return min(self._standby_after, max(_MIN_STUCK_AFTER, 2 * recent[(len(recent) * 9) // 10]))

    def _lendable_target(self) -> int:
        """Workers to lend: ``num_workers`` plus the granted standbys. Call with the lock held."""
        return self.num_workers + self._standbys - self._dead_slots

    def _spare_target(self) -> int:
        """Warm standbys to keep aside: ``warm_standbys``, less the standbys lent. Call with the lock held."""
        warm = self._peak_callers - self.num_workers if self._warm_standbys is None else self._warm_standbys
        return max(0, min(warm, self._max_standby - self._standbys))

    def _target(self) -> int:
        """Workers the pool should have: the lendable ones plus the spares. Call with the lock held."""
        return self._lendable_target() + self._spare_target()

    def _on_stuck(self, worker: _Worker) -> None:
        worker.lower_priority()
        with self._lock:
            self._stuck += 1
        self._grant_standbys()

    def _grant_standbys(self) -> None:
        """One standby per stuck request (up to ``max_standby``): warm ones at once, new ones while callers wait."""
        with self._lock:
            wanted = min(self._stuck, self._max_standby)
            if self._waiting > 0:
                self._standbys = max(self._standbys, wanted)
            else:  # nobody waits yet: lend only the spares already running, which costs no start
                self._standbys = max(self._standbys, min(wanted, self._standbys + len(self._spares)))
            promoted = []
            while self._spares and len(self._live) - len(self._spares) < self._lendable_target():
                promoted.append(self._spares.pop())
        for worker in promoted:
            self._idle.put(worker)
        self._top_up()

    def _end_stuck(self) -> None:
        """A stuck request has ended: its standby, if any, becomes an ordinary worker. Call with the lock held."""
        self._stuck -= 1
        self._standbys = min(self._standbys, self._stuck)

    def _release(self, worker: _Worker, was_stuck: bool) -> None:
        """Return a healthy worker to the idle queue, to the spares, or retire it if the pool has more than it needs."""
        if not worker.restore_priority():  # it would serve ordinary requests at the lowest priority
            self._retire(worker, was_stuck)
            return
        with self._lock:
            if was_stuck:
                self._end_stuck()
            lendable = len(self._live) - len(self._spares)
            place = "idle"
            if self._closed:
                place = "kill"
            elif lendable > self._lendable_target():  # a standby took its place while it was stuck
                place = "spare" if len(self._spares) < self._spare_target() else "kill"
            if place == "spare":
                self._spares.append(worker)
            elif place == "kill":
                self._live.discard(worker)
        if place == "kill":
            threading.Thread(target=worker.kill, name="cures-reward-worker-reap", daemon=True).start()
        elif place == "idle":
            self._idle.put(worker)

    def _recover_async(self, worker: _Worker, was_stuck: bool) -> None:
        threading.Thread(
            target=self._recover, args=(worker, was_stuck), name="cures-reward-worker-recover", daemon=True
        ).start()

    def _recover(self, worker: _Worker, was_stuck: bool) -> None:
        """After a missed deadline: reuse ``worker`` if its alarm ends the request within the grace period."""
        grace_end = time.monotonic() + _RECOVERY_GRACE
        try:
            while True:
                frame = worker.receive(grace_end)
                if frame is None or frame.get("stage") != "gold":
                    break
        except _WorkerDied:
            frame = None
        if frame is None:  # stuck inside one C call, or dead
            self._retire(worker, was_stuck)
        else:
            self._keep_if_healthy(worker, was_stuck)

    def _keep_if_healthy(self, worker: _Worker, was_stuck: bool) -> None:
        """After an interrupted request: release ``worker``, unless the computation left it holding too much memory."""
        rss = worker.rss_mb() if self.memory_limit_mb > 0 else None
        if rss is not None and rss > self.memory_limit_mb / 2:
            logger.info("retiring math-verify worker %d: %.0f MiB resident after a timeout", worker.pid, rss)
            self._retire(worker, was_stuck)
        else:
            self._release(worker, was_stuck)

    def _retire(self, worker: _Worker, was_stuck: bool) -> None:
        """Stop ``worker`` at once; reap it and start what the pool lacks in the background, blocking no caller."""
        if worker.proc.poll() is None:
            worker.proc.kill()  # SIGKILL now, so that it stops using CPU at once
        with self._lock:
            self._live.discard(worker)
            if was_stuck:
                self._end_stuck()
            if not self._closed:
                self.restarts += 1
        self._top_up()
        # Reaping can take a moment (the kernel frees the dead worker's memory): not in the caller's thread.
        threading.Thread(target=worker.kill, name="cures-reward-worker-reap", daemon=True).start()

    def _top_up(self) -> None:
        """Start workers until ready + starting ones reach :meth:`_target`."""
        with self._lock:
            if self._closed:
                return
            missing = max(0, self._target() - len(self._live) - self._starting)
            self._starting += missing
        for _ in range(missing):
            threading.Thread(target=self._start_slot, name="cures-reward-worker-start", daemon=True).start()

    def _start_slot(self) -> None:
        for attempt in range(self._max_start_attempts):
            worker = self._start_worker()
            if worker is not None:
                with self._lock:
                    self._starting -= 1
                    lendable = len(self._live) - len(self._spares)
                    spare = not self._closed and lendable >= self._lendable_target()
                    wanted = not self._closed and (not spare or len(self._spares) < self._spare_target())
                    if wanted:
                        self._live.add(worker)
                        if spare:
                            self._spares.append(worker)
                        else:
                            self._idle.put(worker)
                if not wanted:  # shut down, or the stuck request it was to stand in for has ended
                    worker.kill()
                return
            time.sleep(min(0.5 * 2**attempt, 5.0))
        with self._lock:
            self._starting -= 1
            self._dead_slots += 1
        logger.error(
            "giving up on a math-verify worker slot after %d failed starts (%s); %d of %d slots are dead",
            self._max_start_attempts,
            self._last_start_error,
            self._dead_slots,
            self.num_workers,
        )

    def _start_worker(self) -> _Worker | None:
        command = [sys.executable, _WORKER_SCRIPT, "--memory-mb", str(self.memory_limit_mb)]
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not every worker
            )
        except OSError as exc:
            self._last_start_error = f"cannot run {command[0]}: {exc}"
            logger.error("starting a math-verify worker failed: %s", self._last_start_error)
            return None
        worker = _Worker(proc)
        try:
            frame = worker.receive(time.monotonic() + self._startup_timeout)
        except _WorkerDied as exc:
            frame = None
            self._last_start_error = str(exc)
        else:
            if frame is None:
                self._last_start_error = f"worker {proc.pid} not ready after {self._startup_timeout:g} s"
        if frame is not None:
            if frame.get("ready") is True:
                return worker
            self._last_start_error = f"worker {proc.pid} sent {frame!r:.200} instead of its ready frame"
        worker.kill()
        logger.error("starting a math-verify worker failed: %s (its stderr is above)", self._last_start_error)
        return None
