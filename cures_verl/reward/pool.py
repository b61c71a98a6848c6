"""A pool of math-verify worker processes with a hard, per-request deadline.

Why not :class:`concurrent.futures.ProcessPoolExecutor` (what verl 0.9.1's
``verl/utils/reward_score/math_verify.py`` uses): ``future.result(timeout)`` stops *waiting*, but the worker keeps
computing. A response such as ``\\boxed{10^{10^{10}}}`` then holds that pool slot for good, and after a few of
them every later reward call waits behind hung workers. The executor cannot kill a single worker either (killing
one breaks the whole pool). Here each worker is a plain child process talking over two pipes; a request that
misses its deadline gets its worker ``SIGKILL``-ed and a fresh one started in the background, so a slot is busy
for at most ``timeout`` seconds per request.

Design points:

* **Start method.** Workers are started with :class:`subprocess.Popen` running ``_worker.py`` in a fresh
  interpreter (no ``fork``): safe from any thread, inside Ray actors, and with no re-import of the caller's
  ``__main__`` (so a user script without an ``if __name__ == "__main__"`` guard works, unlike
  ``multiprocessing``'s spawn). Requests and replies are small JSON frames; no pickle crosses the boundary.
* **Laziness and threads.** Nothing starts until the first :meth:`VerifierPool.submit`. Any number of threads may
  call :meth:`~VerifierPool.submit` at once; each borrows one idle worker from a queue, so a worker serves one
  request at a time. Start-up (importing sympy, about 1 s) never counts against a request's deadline: only ready
  workers are lent.
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
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["VerifyOutcome", "VerifierPool"]

logger = logging.getLogger(__name__)

_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")
_HEADER = struct.Struct(">I")
_MAX_REPLY_BYTES = 1024 * 1024


class _WorkerDied(Exception):
    """The worker closed its pipe, sent garbage or could not be written to."""


@dataclass(frozen=True)
class VerifyOutcome:
    """What happened to one request.

    Attributes:
        status: ``"ok"`` (``reply`` holds the worker's answer), ``"timeout"`` (the deadline passed; the worker was
            killed and is being replaced), ``"crashed"`` (the worker died or broke the protocol; replaced too) or
            ``"error"`` (the worker's own code raised; ``detail`` has the message; the worker is kept).
        reply: The worker's reply frame when ``status == "ok"``.
        gold_parsed: Whether the worker reported the gold as parsed before the request ended, or ``None`` if it
            never got that far (for a timeout this means the gold itself is what hung).
        detail: A short human-readable explanation for the non-``ok`` statuses.
    """

    status: Literal["ok", "timeout", "crashed", "error"]
    reply: dict[str, Any] = field(default_factory=dict)
    gold_parsed: bool | None = None
    detail: str = ""


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
        """Return the next frame, or ``None`` once ``time.monotonic()`` passes ``deadline``."""
        header = self._read_exact(_HEADER.size, deadline)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        if size > _MAX_REPLY_BYTES:
            raise _WorkerDied(f"worker {self.pid} sent a {size}-byte frame")
        payload = self._read_exact(size, deadline)
        if payload is None:
            return None
        try:
            frame = json.loads(payload)
        except ValueError as exc:
            raise _WorkerDied(f"worker {self.pid} sent malformed JSON: {exc}") from exc
        if not isinstance(frame, dict):
            raise _WorkerDied(f"worker {self.pid} sent a non-object frame")
        return frame

    def _read_exact(self, size: int, deadline: float) -> bytes | None:
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self._poller.poll(max(1, int(remaining * 1000) + 1)):
                continue
            try:
                chunk = os.read(self._stdout_fd, 65536)
            except OSError as exc:
                raise _WorkerDied(f"cannot read from worker {self.pid}: {exc}") from exc
            if not chunk:
                raise _WorkerDied(f"worker {self.pid} exited (code {self.proc.poll()})")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

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
    """A fixed-size pool of math-verify worker processes; see the module docstring for the design.

    Args:
        num_workers: Number of worker processes, >= 1.
        memory_limit_mb: ``RLIMIT_AS`` of each worker in MiB; 0 leaves memory unlimited.
        startup_timeout: Seconds a new worker may take to import math-verify and report ready.
        max_start_attempts: Attempts per slot before the slot is given up (with a logged error).

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
    ) -> None:
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
            raise ValueError(f"num_workers must be an integer >= 1, got {num_workers!r}")
        if not isinstance(memory_limit_mb, int) or memory_limit_mb < 0:
            raise ValueError(f"memory_limit_mb must be an integer >= 0 (0 = unlimited), got {memory_limit_mb!r}")
        if not startup_timeout > 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        if max_start_attempts < 1:
            raise ValueError(f"max_start_attempts must be >= 1, got {max_start_attempts!r}")
        self.num_workers = num_workers
        self.memory_limit_mb = memory_limit_mb
        self._startup_timeout = float(startup_timeout)
        self._max_start_attempts = max_start_attempts
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self._started = False
        self._closed = False
        self._dead_slots = 0
        self._last_start_error = ""
        self.restarts = 0
        """Workers killed or lost and replaced so far (timeouts and crashes)."""

    # ----------------------------------------------------------------------------------------------- public API

    def submit(self, request: dict[str, Any], *, timeout: float) -> VerifyOutcome:
        """Run one request on an idle worker, killing that worker if it takes longer than ``timeout`` seconds.

        Waiting for an idle worker does not count against ``timeout``; with ``k`` requests queued per worker the
        wait is at most about ``k * timeout``.

        Args:
            request: The JSON-serialisable request frame (see ``_worker.py``).
            timeout: Deadline for the request, in seconds, from the moment a worker takes it.

        Returns:
            The :class:`VerifyOutcome`.

        Raises:
            RuntimeError: If the pool is shut down, or no worker can be started at all (math-verify missing in
                this interpreter's environment, for instance).
        """
        self._ensure_started()
        worker = self._acquire()
        keep = False
        gold_parsed: bool | None = None
        outcome = VerifyOutcome("crashed", detail="interrupted")
        try:
            request = {**request, "cpu_seconds": int(timeout) + 2}
            worker.send(request)
            deadline = time.monotonic() + timeout
            while True:
                frame = worker.receive(deadline)
                if frame is None:
                    outcome = VerifyOutcome("timeout", gold_parsed=gold_parsed, detail=f"no reply in {timeout:g} s")
                    break
                if frame.get("stage") == "gold":
                    gold_parsed = bool(frame.get("gold_parsed"))
                    continue
                keep = True
                if "error" in frame:
                    outcome = VerifyOutcome("error", gold_parsed=gold_parsed, detail=str(frame["error"]))
                else:
                    outcome = VerifyOutcome("ok", reply=frame, gold_parsed=gold_parsed)
                break
        except _WorkerDied as exc:
            outcome = VerifyOutcome("crashed", gold_parsed=gold_parsed, detail=str(exc))
        finally:
            if keep:
                self._idle.put(worker)
            else:
                self._replace(worker)
        return outcome

    def worker_pids(self) -> list[int]:
        """PIDs of the live workers (started and not yet killed)."""
        with self._lock:
            return sorted(worker.pid for worker in self._live)

    def wait_ready(self, timeout: float) -> bool:
        """Start the workers if needed and wait until all slots have a ready worker; True if they all do."""
        self._ensure_started()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._live) + self._dead_slots >= self.num_workers and self._idle.qsize() >= len(self._live):
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
        for _ in range(self.num_workers):
            self._start_async()

    def _acquire(self) -> _Worker:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the math-verify worker pool was shut down while waiting for a worker")
                if self._dead_slots >= self.num_workers:
                    raise RuntimeError(
                        f"no math-verify worker could be started ({self._last_start_error}); check that "
                        f"`{sys.executable} -c 'import math_verify'` works (pip install 'math-verify>=0.8')"
                    )
            try:
                worker = self._idle.get(timeout=0.2)
            except queue.Empty:
                continue
            if worker.proc.poll() is None:
                return worker
            logger.warning("math-verify worker %d died while idle (code %s)", worker.pid, worker.proc.returncode)
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)
            if self._closed:
                return
            self.restarts += 1
        self._start_async()

    def _start_async(self) -> None:
        threading.Thread(target=self._start_slot, name="cures-reward-worker-start", daemon=True).start()

    def _start_slot(self) -> None:
        for attempt in range(self._max_start_attempts):
            worker = self._start_worker()
            if worker is not None:
                with self._lock:
                    if not self._closed:
                        self._live.add(worker)
                        self._idle.put(worker)
                        return
                worker.kill()
                return
            time.sleep(min(0.5 * 2**attempt, 5.0))
        with self._lock:
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
