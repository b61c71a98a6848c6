"""An earlier version of this package, imported side by side with the current one, for before/after timings.

``import_baseline("HEAD")`` extracts ``cures_verl/`` as it is at a git revision into a temporary directory, renames
the package (``cures_verl`` -> ``cures_verl_at_<sha>``, imports included) and imports it, so one process can time
the old and the new code in the same interleaved loop (``python -m cures_verl.experiments.curriculum --part overhead
--baseline-ref HEAD``, ``python -m cures_verl.experiments.trainer.hook_overhead --baseline-ref HEAD``). It needs a git
checkout.
"""

from __future__ import annotations

import atexit
import importlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

__all__ = ["import_baseline"]

_PACKAGE = "cures_verl"
_loaded: dict[str, str] = {}


def _git(root: Path, *args: str) -> bytes:
    try:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        raise RuntimeError(
            f"--baseline-ref needs git and a checkout of this repository ({' '.join(args)} failed: "
            f"{detail.decode(errors='replace').strip() or error})"
        ) from error


def import_baseline(ref: str, module: str = "") -> ModuleType:
    """Import ``cures_verl<module>`` as it is at git revision ``ref``, under a package name of its own.

    Args:
        ref: A git revision (``HEAD``, a tag, a commit).
        module: Dotted submodule to import, e.g. ``.core.curriculum`` ("" for the package).

    Returns:
        The imported (renamed) module; its package is ``cures_verl_at_<first 10 hex digits of the commit>``.

    Raises:
        RuntimeError: If git fails (not a checkout, unknown revision).
    """
    root = Path(__file__).resolve().parents[3]
    sha = _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    name = _loaded.get(sha)
    if name is None:
        name = f"{_PACKAGE}_at_{sha[:10]}"
        target = Path(tempfile.mkdtemp(prefix="cures-baseline-"))
        atexit.register(shutil.rmtree, target, ignore_errors=True)
        archive = _git(root, "archive", "--format=tar", sha, _PACKAGE)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            try:
                tar.extractall(target, filter="data")
            except TypeError:  # a Python without extraction filters (our own git archive: trusted)
                tar.extractall(target)
        (target / _PACKAGE).rename(target / name)
        pattern = re.compile(rf"\b{_PACKAGE}\b")
        for path in (target / name).rglob("*.py"):
            path.write_text(pattern.sub(name, path.read_text()))
        sys.path.insert(0, str(target))
        _loaded[sha] = name
    return importlib.import_module(name + module)
