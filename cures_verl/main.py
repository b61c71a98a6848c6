"""``python -m cures_verl.main``: train with CurES through verl (see cures_verl/verl_adapter/main.py)."""

from __future__ import annotations

from cures_verl.verl_adapter.main import main

if __name__ == "__main__":
    main()
