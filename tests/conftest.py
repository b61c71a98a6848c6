"""Shared pytest configuration.

Tests import optional dependencies with ``pytest.importorskip``. With ``CI=true`` a missing optional
dependency fails the run instead of skipping, so a broken install step cannot pass as green.

The demo's tiny assets and tokenizer (``random_assets``, ``demo_tokenizer``), built once per session, offline, in
seconds, serve both CPU mode's tests (tests/cpu) and the demo's (tests/experiments/trainer).
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

if IN_CI:
    _importorskip = pytest.importorskip

    def _importorfail(modname: str, *args, **kwargs):
        try:
            return _importorskip(modname, *args, **kwargs)
        except pytest.skip.Exception as exc:
            pytest.fail(f"CI=true but optional dependency {modname!r} is missing: {exc}", pytrace=False)

    pytest.importorskip = _importorfail

try:
    from hypothesis import settings

    # No per-example deadline: a shared 2-core CI machine makes wall-clock limits flaky. Under CI the examples
    # are derandomized, so a red run reproduces exactly.
    settings.register_profile("cures", deadline=None, derandomize=IN_CI, print_blob=True)
    settings.load_profile("cures")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass


# ---------------------------------------------------------------------------------------------- demo assets
@pytest.fixture(scope="session")
def random_assets(tmp_path_factory: pytest.TempPathFactory):
    """Demo assets with a random (not warm-started) model: 16 train and 4 val prompts."""
    pytest.importorskip("transformers")
    from cures_verl.experiments.trainer import build_demo_assets

    return build_demo_assets(
        tmp_path_factory.mktemp("demo_random"), num_prompts=16, num_val_prompts=4, warm_start_steps=0, seed=0
    )


@pytest.fixture(scope="session")
def demo_tokenizer():
    """The demo tokenizer (numbers 0..27)."""
    pytest.importorskip("transformers")
    from cures_verl.experiments.trainer import build_tokenizer

    return build_tokenizer(27)
