"""The agreement benchmark as a CI guard: on the labelled set (``tests/fixtures/reward_agreement.jsonl``) our reward
agrees with the labels at least as often as math-verify called directly, in every family, and on at least 98% of
all pairs (``cures_verl/experiments/reward/agreement.py`` prints the full table, verl's default reward included)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("math_verify")

# a fresh copy of the module, loaded from its file (as the old script was)
SCRIPT = Path(importlib.util.find_spec("cures_verl.experiments.reward.agreement").origin or "")
OVERALL_TARGET = 0.98
REQUIRED_FAMILIES = {
    "numina_multi",
    "repeating_decimal",
    "scientific_notation",
    "unicode",
    "set_builder",
    "percent",
    "braceless_boxed",
    "numeric_tolerance",
    "adversarial",
    "bad_gold",
    "mixed",
    "text_words",
}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reward_agreement", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load()


def test_the_labelled_set_covers_every_family_with_both_verdicts(bench: ModuleType) -> None:
    pairs = bench.load_pairs()
    assert len(pairs) >= 300
    counts = Counter(pair.family for pair in pairs)
    assert set(counts) == REQUIRED_FAMILIES
    assert all(count >= 10 for count in counts.values()), counts
    for family in REQUIRED_FAMILIES - {"bad_gold"}:  # a bad gold is never matched
        assert {pair.expected for pair in pairs if pair.family == family} == {0, 1}, family
    assert len({(repr(pair.gold), pair.response) for pair in pairs}) == len(pairs)  # no duplicate pair


def test_the_loader_names_the_line_and_the_field_of_a_bad_row(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"gold": "1", "response": "x", "expected": 1, "family": "f"}\n{"gold": "1", "response": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected an object with the fields"):
        bench.load_pairs(path)


def test_our_reward_agrees_with_the_labels_at_least_as_often_as_math_verify_in_every_family(
    bench: ModuleType,
) -> None:
    pairs = bench.load_pairs()
    ours = bench.agreement(pairs, bench.score_cures(pairs))
    direct = bench.agreement(pairs, bench.score_math_verify_direct(pairs))
    worse = {family: (ours[family], direct[family]) for family in ours if ours[family][0] < direct[family][0]}
    assert not worse, f"families where math-verify direct agrees more often (ours, direct): {worse}"
    hits, total = ours["overall"]
    assert hits / total >= OVERALL_TARGET, f"overall agreement {hits}/{total}; misses: " + "; ".join(
        f"[{p.family}] {p.gold!r} vs {p.response[-80:]!r} (expected {p.expected})"
        for p in bench.misses(pairs, bench.score_cures(pairs))
    )
