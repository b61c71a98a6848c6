"""Agreement of math rewards with hand-written labels, per notation family, side by side.

The labelled set is ``tests/fixtures/reward_agreement.jsonl``: one JSON object per line with ``gold`` (the
ground truth, as a dataset row would hold it; ``null`` for a missing one), ``response`` (a model response),
``expected`` (1 when the response's final answer is mathematically equal to the gold under the rules of
``docs/reward.md``, else 0; written from the mathematics, not from any scorer's output) and ``family``.

Scorers, each given the same (gold, response) pairs:

* ``cures``: :func:`cures_verl.reward.math_verify.compute_score` with its default options.
* ``math-verify``: math-verify called directly, as its README shows: ``verify(parse(gold), parse(response))``
  with the default extraction configs and timeouts; a gold without a box is wrapped in ``\\boxed{}`` first
  (as verl does), since math-verify only extracts bare LaTeX from math environments.
* ``verl default``: ``verl.utils.reward_score.default_compute_score`` with ``data_source="lighteval/MATH"``,
  verl's default math reward (``math_reward.compute_score``: last box, string normalisation, equality).

math-verify and verl are called in this process's main thread (math-verify's ``signal.alarm`` timeouts need it);
cures uses its worker pool. Run::

    python -m cures_verl.experiments.reward.agreement [--workers 2] [--show-misses]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "reward_agreement.jsonl"
FIELDS = ("gold", "response", "expected", "family")


@dataclass(frozen=True)
class Pair:
    gold: Any
    response: str
    expected: int
    family: str


def load_pairs(path: Path = FIXTURE) -> list[Pair]:
    """Read the labelled set; every line must be an object with exactly :data:`FIELDS`.

    Raises:
        ValueError: Naming the line and the field that is missing or wrong.
    """
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or set(row) != set(FIELDS):
            raise ValueError(f"{path}:{number}: expected an object with the fields {FIELDS}, got {line[:80]!r}")
        if row["expected"] not in (0, 1) or not isinstance(row["response"], str) or not isinstance(row["family"], str):
            raise ValueError(f"{path}:{number}: expected must be 0/1, response and family strings")
        pairs.append(Pair(row["gold"], row["response"], int(row["expected"]), row["family"]))
    return pairs


def score_cures(pairs: Sequence[Pair], *, workers: int = 2, threads: int = 8, timeout: float = 30.0) -> list[int]:
    """Our reward, default options but a generous ``timeout`` (this measures agreement, not latency, on machines
    that may be busy), called from ``threads`` threads as verl's reward loop does."""
    from cures_verl.reward import math_verify as cures

    if not cures._get_pool(workers).wait_ready(120):
        raise RuntimeError("the reward's worker processes did not start within 120 s")

    def one(pair: Pair) -> int:
        result = cures.compute_score(
            data_source="agreement",
            solution_str=pair.response,
            ground_truth=pair.gold,
            num_workers=workers,
            timeout=timeout,
            use_cache=False,
        )
        return int(result["score"])

    with ThreadPoolExecutor(max_workers=threads) as executor:
        return list(executor.map(one, pairs))


def score_math_verify_direct(pairs: Sequence[Pair]) -> list[int]:
    """math-verify's own ``parse``/``verify``, defaults throughout (main thread only: it uses ``signal.alarm``)."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    parsed_golds: dict[str, list[Any]] = {}  # parse() is deterministic: each distinct gold once
    scores = []
    for pair in pairs:
        if not isinstance(pair.gold, str):
            scores.append(0)
            continue
        gold = pair.gold if "\\boxed" in pair.gold else "\\boxed{" + pair.gold + "}"
        try:
            if gold not in parsed_golds:
                parsed_golds[gold] = parse(gold)
            scores.append(int(bool(verify(parsed_golds[gold], parse(pair.response)))))
        except Exception:  # math-verify documents no exceptions, but a crash is a 0, as in any grader
            scores.append(0)
    return scores


def score_verl_default(pairs: Sequence[Pair]) -> list[int]:
    """verl's ``default_compute_score`` for a MATH data source (its default math reward)."""
    from verl.utils.reward_score import default_compute_score

    scores = []
    for pair in pairs:
        try:
            result = default_compute_score("lighteval/MATH", pair.response, pair.gold)
        except Exception:  # verl raises on a missing gold (None); that call would end a run, here it is a 0
            result = 0.0
        scores.append(int(float(result) == 1.0))
    return scores


def agreement(pairs: Sequence[Pair], scores: Sequence[int]) -> dict[str, tuple[int, int]]:
    """``{family: (agreeing, total)}`` plus ``"overall"``."""
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair, score in zip(pairs, scores, strict=True):
        for key in (pair.family, "overall"):
            table[key][0] += int(score == pair.expected)
            table[key][1] += 1
    return {key: (hits, total) for key, (hits, total) in table.items()}


def render(pairs: Sequence[Pair], columns: dict[str, list[int]]) -> str:
    """A Markdown table: one row per family (then overall), one column per scorer, "hits/total (rate)"."""
    tables = {name: agreement(pairs, scores) for name, scores in columns.items()}
    families = sorted({pair.family for pair in pairs}) + ["overall"]
    lines = ["| family | pairs | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for family in families:
        total = next(iter(tables.values()))[family][1]
        cells = [f"{tables[name][family][0]}/{total} ({tables[name][family][0] / total:.1%})" for name in columns]
        lines.append(f"| {family} | {total} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def misses(pairs: Sequence[Pair], scores: Sequence[int]) -> list[Pair]:
    return [pair for pair, score in zip(pairs, scores, strict=True) if score != pair.expected]


def _timed(function: Callable[[], list[int]]) -> tuple[list[int], float]:
    start = time.perf_counter()
    scores = function()
    return scores, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="labelled JSONL file")
    parser.add_argument("--workers", type=int, default=2, help="cures worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="cures caller threads (default 8)")
    parser.add_argument("--no-verl", action="store_true", help="skip verl's default reward (verl not installed)")
    parser.add_argument("--show-misses", action="store_true", help="list every pair a scorer gets wrong")
    args = parser.parse_args(argv)

    pairs = load_pairs(args.fixture)
    print(f"{len(pairs)} labelled pairs from {args.fixture}, {os.cpu_count()} CPUs")
    columns: dict[str, list[int]] = {}
    seconds: dict[str, float] = {}
    columns["cures"], seconds["cures"] = _timed(lambda: score_cures(pairs, workers=args.workers, threads=args.threads))
    columns["math-verify direct"], seconds["math-verify direct"] = _timed(lambda: score_math_verify_direct(pairs))
    if not args.no_verl:
        columns["verl default"], seconds["verl default"] = _timed(lambda: score_verl_default(pairs))
    print(render(pairs, columns))
    print("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items()))
    if args.show_misses:
        for name, scores in columns.items():
            wrong = misses(pairs, scores)
            print(f"\n{name}: {len(wrong)} misses")
            for pair in wrong:
                print(
                    f"  [{pair.family}] expected {pair.expected}: gold={pair.gold!r} response={pair.response[-120:]!r}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
