"""Who may import verl (house style 5.1, with CPU mode as its own package since issue 20).

verl, Ray and Hydra enter through the adapter (``cures_verl/verl_adapter``) and CPU mode (``cures_verl/cpu``), which
plugs a platform and a rollout into verl. The only other importers are the experiments that measure verl itself:
the hook-overhead benchmark runs the adapter's hooks on verl's trainer, and the reward benchmarks compare our reward
with verl's. The check reads every module's imports, top-level and inside functions, so a lazy import counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cures_verl"
VERL_STACK = {"verl", "ray", "hydra", "omegaconf"}
ALLOWED = (
    "verl_adapter/",
    "cpu/",
    "experiments/trainer/hook_overhead.py",
    "experiments/reward/",
)


def _imported_modules(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (``from a.b import c`` gives ``a.b``)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def _imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)}


def test_only_the_adapter_cpu_mode_and_the_verl_benchmarks_import_verl_ray_or_hydra():
    importers = {
        path.relative_to(PACKAGE).as_posix(): sorted(_imported_roots(path) & VERL_STACK)
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    outside = {name: roots for name, roots in importers.items() if roots and not name.startswith(ALLOWED)}
    assert not outside, f"these modules import {sorted(VERL_STACK)} outside {ALLOWED}: {outside}"
    # the check sees the real importers (a scan that found nothing would pass vacuously)
    assert "verl" in importers["verl_adapter/trainer.py"] and "verl" in importers["cpu/plugin.py"]
    assert "verl" in importers["experiments/trainer/hook_overhead.py"]


def test_the_training_path_never_imports_the_experiments():
    importers = {
        path.relative_to(PACKAGE).as_posix(): sorted(
            name for name in _imported_modules(path) if name.startswith("cures_verl.experiments")
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    outside = {name: found for name, found in importers.items() if found and not name.startswith("experiments/")}
    assert not outside, f"the package outside cures_verl/experiments imports it: {outside}"
    assert importers["experiments/strategies/registry.py"]  # the scan sees the experiments' own imports
