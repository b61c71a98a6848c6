"""Run a command in its own process group under a hard time limit (standard library only).

A verl run whose Ray resources are misconfigured waits forever instead of failing. The CPU demo and the
end-to-end tests therefore run the trainer as a subprocess in a new process group and, past the limit, kill
the whole group (Ray's raylet, GCS and workers included), so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["RunTimeout", "run_with_watchdog"]

#: Variables a parent CPU-mode process may have set that must not leak into a fresh run.
_INHERITED_CPU_MODE_ENV = ("RAY_ADDRESS", "CURES_CPU_MODE", "VERL_PLATFORM")


class RunTimeout(RuntimeError):
    """The command ran past its limit and its process group was killed."""

    def __init__(self, seconds: float, output: str) -> None:
        super().__init__(f"the run exceeded {seconds:.0f} s and its process group was killed")
        self.output = output


def run_with_watchdog(
    command: Sequence[str],
    *,
    timeout_s: float,
    cwd: str | Path | None = None,
    log_path: str | Path | None = None,
    echo: bool = False,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (stdout and stderr merged) in a new process group, killing the group after ``timeout_s``.

    Args:
        command: The command line.
        timeout_s: Hard limit on the wall time, seconds.
        cwd: Working directory.
        log_path: Also write the output there, line by line.
        echo: Also write the output to this process's stdout, line by line (a live progress view).
        env: Environment; default this process's without inherited CPU-mode and Ray-address variables.
        extra_env: Variables added to (or replacing those of) ``env``.

    Returns:
        The completed process with its return code and output.

    Raises:
        RunTimeout: Past the limit (the output so far is in ``.output``).
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if k not in _INHERITED_CPU_MODE_ENV}
    env = {**env, **(extra_env or {})}
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        bufsize=1,
    )
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    log = open(log_path, "w") if log_path is not None else None  # noqa: SIM115 - closed in finally
    timer = _Killer(process, deadline)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # ends when the process (or the killer) closes the pipe
            lines.append(line)
            if log is not None:
                log.write(line)
            if echo:
                sys.stdout.write(line)
        process.wait()
        if timer.fired:
            raise RunTimeout(timeout_s, "".join(lines))
        return subprocess.CompletedProcess(list(command), process.returncode, "".join(lines), "")
    finally:
        timer.cancel()
        if process.poll() is None:
            _kill_group(process)
        if log is not None:
            log.close()


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


class _Killer:
    """Kills the process group at the deadline even while the reader blocks on a silent pipe."""

    def __init__(self, process: subprocess.Popen[str], deadline: float) -> None:
        import threading

        self.fired = False
        self._process = process
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self._process.poll() is None:
            self.fired = True
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()
