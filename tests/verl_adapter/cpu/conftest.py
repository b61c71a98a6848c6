"""Fixtures of CPU-mode tests: the demo assets, built once per session, offline, in seconds."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def random_assets(tmp_path_factory: pytest.TempPathFactory):
    """Demo assets with a random (not warm-started) model: 16 train and 4 val prompts."""
    pytest.importorskip("transformers")
    from cures_verl.demo import build_demo_assets

    return build_demo_assets(
        tmp_path_factory.mktemp("demo_random"), num_prompts=16, num_val_prompts=4, warm_start_steps=0, seed=0
    )


@pytest.fixture(scope="session")
def demo_tokenizer():
    """The demo tokenizer (numbers 0..27)."""
    pytest.importorskip("transformers")
    from cures_verl.demo import build_tokenizer

    return build_tokenizer(27)
