"""The overhead benchmark: it times every variant side by side and reports per-prompt memory."""

from __future__ import annotations

import numpy as np
import pytest

from cures_verl.experiments.curriculum.overhead import (
    OVERHEAD_MODES,
    REFERENCE,
    DenseReferenceSampler,
    OverheadConfig,
    run_overhead,
)


def test_overhead_rows_cover_every_variant_with_consistent_ratios():
    config = OverheadConfig(sizes=(2_000,), batch_size=64, seconds=0.05, min_repeats=3, max_repeats=5, warmup=1)
    result = run_overhead(config)
    rows = {row["mode"]: row for row in result["rows"]}
    assert set(rows) == {*OVERHEAD_MODES, REFERENCE}
    reference = rows[REFERENCE]["median_ms"]
    for row in rows.values():
        assert 3 <= row["repeats"] <= 5
        assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
        assert row["reference_ratio"] == reference / row["median_ms"]
    assert rows[REFERENCE]["bytes_per_prompt"] == 16.0  # dense alpha and beta
    assert rows["paper"]["bytes_per_prompt"] > 16.0  # counts plus the sum tree


def test_dense_reference_draws_distinct_prompts_and_allocates_the_budget_and_counts_rewards():
    ref = DenseReferenceSampler(500, batch_size=50, rollouts_per_prompt=8, seed=1)
    prompts, counts = ref.plan()
    assert np.unique(prompts).size == 50 and counts.sum() == 400 and counts.min() >= 2
    ids = np.repeat(prompts, counts)
    rewards = np.ones(ids.size)
    ref.observe(ids, rewards)
    assert ref.alpha.sum() == 500 + 400 and ref.beta.sum() == 500


def test_a_baseline_revision_is_timed_in_the_same_loop_and_reported_before_after():
    from cures_verl.experiments.curriculum.overhead import baseline_name
    from cures_verl.experiments.curriculum.report import format_overhead

    config = OverheadConfig(
        sizes=(2_000,), batch_size=64, seconds=0.05, min_repeats=2, max_repeats=3, warmup=1, baseline_ref="HEAD"
    )
    try:
        result = run_overhead(config)
    except RuntimeError as error:  # not a git checkout
        pytest.skip(str(error))
    rows = {row["mode"]: row for row in result["rows"]}
    assert set(rows) == {*OVERHEAD_MODES, *(baseline_name(m, "HEAD") for m in OVERHEAD_MODES), REFERENCE}
    assert all(row["cpu_median_ms"] > 0 for row in rows.values())
    text = format_overhead(result)
    assert "before/after" in text and "recommended @HEAD" in text
