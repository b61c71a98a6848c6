"""The core must stay importable without torch, verl, ray or omegaconf (house style 5.1)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("torch", "verl", "ray", "omegaconf", "hydra", "transformers", "scipy")


def test_core_and_config_import_only_numpy_and_the_standard_library():
    code = (
        "import json, sys; import cures_verl, cures_verl.config, cures_verl.core; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(out.stdout))
    assert "numpy" in loaded
    assert not loaded & set(FORBIDDEN), f"core pulled in {sorted(loaded & set(FORBIDDEN))}"


def test_config_module_imports_without_numpy():
    code = "import sys, cures_verl.config; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
