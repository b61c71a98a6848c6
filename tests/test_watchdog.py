"""The watchdog kills a hung run's whole process group and reports what it printed."""

from __future__ import annotations

import sys
import time

import pytest

from cures_verl.watchdog import RunTimeout, run_with_watchdog


def test_a_finished_command_returns_its_output_and_code(tmp_path):
    log = tmp_path / "log.txt"
    done = run_with_watchdog(
        [sys.executable, "-c", "print('a'); print('b'); raise SystemExit(3)"], timeout_s=30, log_path=log
    )
    assert done.returncode == 3 and done.stdout == "a\nb\n" and log.read_text() == "a\nb\n"


def test_a_silent_hung_command_and_its_children_are_killed_at_the_limit(tmp_path):
    marker = tmp_path / "child_alive"
    child = tmp_path / "child.py"
    child.write_text(f"import time\ntime.sleep(3)\nopen({str(marker)!r}, 'w').close()\n")
    parent = tmp_path / "parent.py"
    parent.write_text(
        "import subprocess, sys, time\n"
        "print('started', flush=True)\n"
        f"subprocess.Popen([sys.executable, {str(child)!r}])\n"
        "time.sleep(60)\n"
    )
    code = f"exec(open({str(parent)!r}).read())"
    start = time.monotonic()
    with pytest.raises(RunTimeout) as caught:
        run_with_watchdog([sys.executable, "-c", code], timeout_s=1.5)
    assert time.monotonic() - start < 10
    assert "started" in caught.value.output
    time.sleep(3.5)
    assert not marker.exists(), "the grandchild survived the watchdog"
