"""``python -m cures_verl.preflight <the run's Hydra overrides>``: check a run before it starts, in under a minute and
without GPUs (see cures_verl/verl_adapter/preflight.py)."""

from __future__ import annotations

import sys

from cures_verl.verl_adapter.preflight import main

if __name__ == "__main__":
    sys.exit(main())
