"""The Hydra YAML block and docs/configuration.md stay generated from cures_verl/config.py; the hand-written
restatements of the presets (docs tables, recipe defaults) are checked against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cures_verl.config import _scalar, preset_values
from cures_verl.config_docs import field_docs, render_cures_yaml_block, render_docs_table

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "cures_verl" / "verl_adapter" / "config" / "cures_trainer.yaml"
DOCS = ROOT / "docs" / "configuration.md"
BEYOND = ROOT / "docs" / "beyond_the_paper.md"
ALGORITHM = ROOT / "docs" / "algorithm.md"
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


# ---- hand-written restatements of the presets (docs tables, recipe defaults) are checked against config.py


def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else len(text)]


def _value(cell: str) -> object:
    """The value a table cell states first: a backticked word or a bare number, as config.py types it."""
    token = re.match(r"\s*`?([^`\s(]+)`?", cell)
    assert token, cell
    return _scalar(token.group(1))


def test_the_recommended_preset_table_states_config_pys_values():
    """docs/beyond_the_paper.md section 3 lists every key on which recommended differs from paper, with both values."""
    rows = re.findall(r"^\| `cures\.([\w.]+)` \| ([^|]+) \| ([^|]+) \|", _section(BEYOND, "## 3. "), re.M)
    paper, recommended = preset_values("paper"), preset_values("recommended")
    assert {key for key, *_ in rows} == {k for k in recommended if recommended[k] != paper[k] and k != "preset"}
    for key, paper_cell, recommended_cell in rows:
        assert (_value(paper_cell), _value(recommended_cell)) == (paper[key], recommended[key]), key


def test_the_official_code_table_states_config_pys_values():
    """docs/algorithm.md section 5: every ``key=value`` of the preset column is the official_code preset's value, and
    every key the preset changes is stated."""
    cells = re.findall(r"^\| \d+ \| [^|]+ \| ([^|]+) \|", _section(ALGORITHM, "## 5. "), re.M)
    stated = dict(re.findall(r"`([a-z_]+\.[a-z_]+)=([^`]+)`", " ".join(cells)))
    official, paper = preset_values("official_code"), preset_values("paper")
    assert {k for k in official if official[k] != paper[k] and k != "preset"} <= stated.keys()
    for key, value in stated.items():
        assert _scalar(value) == official[key], key


def test_recipe_schedule_defaults_are_the_paper_presets():
    """The GPU recipes default NUM_ITERATIONS, STEPS_PER_ITERATION and COLD_START_ROLLOUTS (for the paper's
    schedule and the equal-rollout GRPO budget) to the paper preset's T, M and N'."""
    paper = preset_values("paper")
    found = 0
    for script in sorted((ROOT / "recipes").glob("*.sh")):
        for variable, default in re.findall(
            r"\$\{(NUM_ITERATIONS|STEPS_PER_ITERATION|COLD_START_ROLLOUTS):-(\d+)\}", script.read_text()
        ):
            assert int(default) == paper[f"schedule.{variable.lower()}"], (script.name, variable)
            found += 1
    assert found >= 3
