#!/usr/bin/env python
"""Export the CurES posterior of a verl checkpoint as an .npz (prior for another run, or for analysis).

Usage:
    python scripts/export_posterior.py checkpoints/<project>/<experiment>/global_step_150/data.pt posterior.npz

The .npz holds ``stable_ids`` (extra_info.index), ``accuracy`` (posterior mean), ``alpha`` and ``beta``. Use it with
``cures.posterior.prior_source=checkpoint cures.posterior.prior_path=posterior.npz``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_pt", help="global_step_N/data.pt of a CurES run")
    parser.add_argument("out", help="output .npz")
    args = parser.parse_args(argv)
    state = torch.load(args.data_pt, weights_only=False, map_location="cpu")
    sampler = state.get("_index_sampler_state") if isinstance(state, dict) else None
    if not isinstance(sampler, dict) or "curriculum" not in sampler:
        raise SystemExit(f"{args.data_pt} holds no CurES sampler state")
    tracker = sampler["curriculum"]["tracker"]
    alpha = np.asarray(tracker["prior_correct"], dtype=np.float64) + np.asarray(tracker["num_correct"])
    beta = np.asarray(tracker["prior_incorrect"], dtype=np.float64) + np.asarray(tracker["num_incorrect"])
    np.savez(
        args.out, stable_ids=np.asarray(sampler["stable_ids"]), accuracy=alpha / (alpha + beta), alpha=alpha, beta=beta
    )
    print(f"wrote {args.out}: {alpha.size} prompts, mean accuracy {float(np.mean(alpha / (alpha + beta))):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
