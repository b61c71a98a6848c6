"""The watchdog kills a hung run's whole process group and reports what it printed."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cures_verl.experiments.watchdog import RunTimeout, run_with_watchdog


def test_a_finished_command_returns_its_output_and_code(tmp_path):
    log = tmp_path / "log.txt"
    done = run_with_watchdog(
        [sys.executable, "-c", "print('a'); print('b'); raise SystemExit(3)"], timeout_s=30, log_path=log
    )
    assert done.returncode == 3 and done.stdout == "a\nb\n" and log.read_text() == "a\nb\n"


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed orphan may wait a moment to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_silent_hung_command_and_its_children_are_killed_at_the_limit(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    child = tmp_path / "child.py"
    child.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    parent = tmp_path / "parent.py"
    parent.write_text(
        "import os, subprocess, sys, time\n"
        # the grandchild does not hold the output pipe, so the watchdog returns at the limit whatever became of it
        f"subprocess.Popen([sys.executable, {str(child)!r}], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"while not os.path.exists({str(pid_file)!r}) or not open({str(pid_file)!r}).read():\n"
        "    time.sleep(0.01)\n"
        "print('grandchild started', flush=True)\n"
        "time.sleep(120)\n"
    )
    start = time.monotonic()
    with pytest.raises(RunTimeout) as caught:
        run_with_watchdog([sys.executable, str(parent)], timeout_s=5)
    assert time.monotonic() - start < 15
    # the grandchild ran (it wrote its pid before the parent printed) ...
    assert "grandchild started" in caught.value.output, caught.value.output
    grandchild = int(pid_file.read_text())
    # ... and the watchdog killed it with the parent's group: gone within seconds, not after its 120 s sleep
    deadline = time.monotonic() + 5
    while _running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = _running(grandchild)
    if survived:  # do not leave it behind
        os.kill(grandchild, signal.SIGKILL)
    assert not survived, f"the grandchild {grandchild} survived the watchdog"
