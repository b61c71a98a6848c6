"""The Hydra YAML block and docs/configuration.md stay generated from cures_verl/config.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cures_verl.config_docs import field_docs, render_cures_yaml_block, render_docs_table

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "cures_verl" / "verl_adapter" / "config" / "cures_trainer.yaml"
DOCS = ROOT / "docs" / "configuration.md"
STALE = "stale: run python scripts/render_config.py"


def test_yaml_cures_block_is_generated_from_the_dataclasses():
    assert YAML.read_text().endswith(render_cures_yaml_block()), STALE


def test_docs_key_table_is_generated_from_the_dataclasses():
    assert render_docs_table() in DOCS.read_text(), STALE


def test_every_field_is_documented():
    keys = [f.key for f in field_docs()]
    assert "sampler.temperature" in keys and "allocation.loss_weighting" in keys
    assert all(f.doc for f in field_docs())


def _check_verl_yaml_rules(text: str) -> list[str]:
    """verl's config CI rules (re-implemented): a comment above every key, a blank line between keys,
    no inline comments."""
    problems = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        if re.match(r"^[A-Za-z_][\w]*:", stripped):
            if " #" in stripped.split(":", 1)[1]:
                problems.append(f"line {i + 1}: inline comment")
            if i == 0 or not lines[i - 1].strip().startswith("#"):
                problems.append(f"line {i + 1}: no comment above {stripped.split(':')[0]}")
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#"):
                j -= 1
            if j >= 0 and lines[j].strip() and not lines[j].rstrip().endswith(":"):
                problems.append(f"line {i + 1}: no blank line before the comment of {stripped.split(':')[0]}")
    return problems


def test_yaml_follows_verls_comment_rules():
    assert _check_verl_yaml_rules(YAML.read_text()) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a: 1\n", "no comment above"), ("# c\na: 1 # inline\n", "inline comment"), ("# c\na: 1\n# d\nb: 2\n", "blank")],
)
def test_the_rule_checker_catches_violations(text, problem):
    assert any(problem in p for p in _check_verl_yaml_rules(text))
