"""Regenerate the config files that mirror cures_verl/config.py (run after changing a config field).

Writes the ``cures:`` block of cures_verl/verl_adapter/config/cures_trainer.yaml and the key table of
docs/configuration.md (between its BEGIN/END markers). tests/test_config_docs.py fails when they are stale.

Usage: python scripts/render_config.py
"""

from __future__ import annotations

from pathlib import Path

from cures_verl.config_docs import render_cures_yaml_block, render_docs_table

ROOT = Path(__file__).resolve().parents[1]
YAML_PATH = ROOT / "cures_verl" / "verl_adapter" / "config" / "cures_trainer.yaml"
DOCS_PATH = ROOT / "docs" / "configuration.md"
YAML_MARKER = "# ---- generated from cures_verl/config.py by scripts/render_config.py; do not edit below ----\n"
BEGIN, END = "<!-- BEGIN generated key table -->\n", "<!-- END generated key table -->\n"


def main() -> None:
    head = YAML_PATH.read_text().split(YAML_MARKER)[0]
    YAML_PATH.write_text(head + YAML_MARKER + "\n" + render_cures_yaml_block())
    docs = DOCS_PATH.read_text()
    before, rest = docs.split(BEGIN)
    _, after = rest.split(END)
    DOCS_PATH.write_text(before + BEGIN + render_docs_table() + END + after)
    print(f"wrote {YAML_PATH.relative_to(ROOT)} and {DOCS_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
