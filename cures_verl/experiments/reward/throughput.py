"""Throughput of cures_verl's math reward against verl's own math-verify scorer, side by side in one run.

Both scorers get the same synthetic GRPO-like batch: ``--count`` responses in groups of ``--group-size`` rollouts
per prompt (each group with its own ground truth). Each response is a few thousand characters of reasoning
(inline LaTeX, numbers) followed by a final answer that is correct (in one of several equivalent forms), wrong,
or missing/unparseable. Calls come from ``--threads`` caller threads, as verl's reward loop calls
``compute_score`` from its executor threads.

Scorers:

* ``verl``: ``verl.utils.reward_score.math_verify.compute_score(model_output, ground_truth)`` (verl 0.9.1):
  a 4-process spawn ``ProcessPoolExecutor``, math-verify over the whole response.
* ``cures (cache off)``: ``cures_verl.reward.math_verify.compute_score(..., use_cache=False)``.
* ``cures``: the same with its default result cache (repeated answers within a group are verified once).

Each scorer's process pool is started and warmed before timing; rounds are interleaved and the median is
reported. Run::

    python -m cures_verl.experiments.reward.throughput --count 800 --workers 2 --threads 8
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


def _thousands(n: int, sep: str) -> str:
    return f"{n:,}".replace(",", sep)


def _problem(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """A fresh (gold, equivalent correct answers, wrong answers) triple; every prompt group gets its own gold."""
    k = rng.randint(3, 40) | 1  # odd
    kind = rng.randrange(10)
    frac = "\\frac{{{}}}{{{}}}".format
    if kind == 0:
        return frac(k, k + 2), [frac(k, k + 2), "\\d" + frac(k, k + 2)[1:], f"{k}/{k + 2}"], [frac(k + 2, k)]
    if kind == 1:
        n = 7 * k
        return str(n), [str(n), f"{n}.0", frac(2 * n, 2)], [str(n + 1), str(-n)]
    if kind == 2:
        return f"{k}\\sqrt{{2}}", [f"{k}\\sqrt{{2}}", f"\\sqrt{{{2 * k * k}}}", f"{k} \\sqrt 2"], [str(k)]
    if kind == 3:
        correct = [f"\\{{{k},{k + 3}\\}}", f"{k}, {k + 3}", f"\\{{{k + 3}, {k}\\}}"]
        return correct[0], correct, [f"\\{{{k}\\}}", f"{k}, {k + 2}"]
    if kind == 4:
        return f"({k}, {k + 5}]", [f"({k},{k + 5}]", f"({k}, {k + 5}]"], [f"[{k}, {k + 5}]", f"({k}, {k + 5})"]
    if kind == 5:
        return f"x^2 + {2 * k}x + {k * k}", [f"(x+{k})^2", f"x^2+{2 * k}x+{k * k}"], [f"(x-{k})^2", f"x^2+{k * k}"]
    if kind == 6:
        return "-" + frac(k, 4), ["-" + frac(k, 4), str(-k / 4), frac(-k, 4)], [frac(k, 4), str(-k / 4 + 0.5)]
    if kind == 7:
        pct = 2 * k + 5
        return f"{pct}\\%", [f"{pct}\\%", str(pct / 100), str(pct)], [f"{pct + 5}\\%", str(pct / 10)]
    if kind == 8:
        n = 1000 * k + 250
        return str(n), [str(n), _thousands(n, "{,}"), _thousands(n, ",")], [str(n + 1000), str(n // 10)]
    return f"{k}\\pi", [f"{k}\\pi", f"\\pi {k}"], [f"{k + 1}\\pi", str(k)]


UNPARSEABLE = ["\\text{see above}", "\\ldots", "???", ""]
CATEGORY_WEIGHTS = {"correct": 0.40, "wrong": 0.35, "no_box": 0.15, "unparseable_box": 0.10}


@dataclass(frozen=True)
class Sample:
    response: str
    gold: str
    category: str


def reasoning(rng: random.Random, chars: int) -> str:
    """Plausible step-by-step text with inline LaTeX and numbers, about ``chars`` long."""
    parts: list[str] = []
    size = 0
    step = 1
    while size < chars:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        sentence = (
            f"Step {step}: we have $a_{{{step}}} = {a}x + {b}$, so $\\frac{{{a}}}{{{b}}}$ of the total is "
            f"{a * b} and the remaining part equals {a + b}. "
        )
        parts.append(sentence)
        size += len(sentence)
        step += 1
    return "".join(parts)


def make_batch(count: int, group_size: int, reasoning_chars: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    categories = list(CATEGORY_WEIGHTS)
    weights = list(CATEGORY_WEIGHTS.values())
    samples: list[Sample] = []
    while len(samples) < count:
        gold, correct, wrong = _problem(rng)
        for _ in range(min(group_size, count - len(samples))):
            category = rng.choices(categories, weights)[0]
            text = reasoning(rng, reasoning_chars)
            if category == "correct":
                text += f"Therefore the answer is $\\boxed{{{rng.choice(correct)}}}$."
            elif category == "wrong":
                text += f"Therefore the answer is $\\boxed{{{rng.choice(wrong)}}}$."
            elif category == "unparseable_box":
                text += f"Therefore the answer is $\\boxed{{{rng.choice(UNPARSEABLE)}}}$."
            else:
                text += "I could not finish the computation."
            samples.append(Sample(text, gold, category))
    return samples


def timed_run(score: Callable[[Sample], float], samples: Sequence[Sample], threads: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        scores = list(executor.map(score, samples))
    return time.perf_counter() - start, scores


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=800, help="responses to score (default 800)")
    parser.add_argument("--workers", type=int, default=2, help="cures worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="caller threads (default 8)")
    parser.add_argument("--group-size", type=int, default=8, help="rollouts per prompt (default 8)")
    parser.add_argument("--reasoning-chars", type=int, default=3000, help="reasoning text per response (default 3000)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call timeout for both scorers (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from verl.utils.reward_score.math_verify import compute_score as verl_compute_score

    from cures_verl.reward import math_verify as cures

    samples = make_batch(args.count, args.group_size, args.reasoning_chars, args.seed)
    print(
        f"{len(samples)} responses, groups of {args.group_size}, ~{args.reasoning_chars} reasoning chars each, "
        f"{args.threads} caller threads, {os.cpu_count()} CPUs"
    )
    mix = {category: sum(s.category == category for s in samples) for category in CATEGORY_WEIGHTS}
    print("mix: " + ", ".join(f"{name} {num}" for name, num in mix.items()))

    def verl_score(sample: Sample) -> float:
        return float(verl_compute_score(sample.response, sample.gold, timeout=args.timeout))

    def cures_score(use_cache: bool) -> Callable[[Sample], float]:
        def score(sample: Sample) -> float:
            result = cures.compute_score(
                data_source="bench",
                solution_str=sample.response,
                ground_truth=sample.gold,
                num_workers=args.workers,
                timeout=args.timeout,
                use_cache=use_cache,
            )
            return result["score"]

        return score

    # Warm-up: start both process pools and import math-verify in every worker before timing.
    warm = make_batch(8 * args.threads, args.group_size, args.reasoning_chars, args.seed + 1)
    timed_run(verl_score, warm, args.threads)
    cures._get_pool(args.workers).wait_ready(120)
    timed_run(cures_score(False), warm, args.threads)

    scorers: list[tuple[str, str, Callable[[Sample], float]]] = [
        ("verl math_verify", "4 (fixed)", verl_score),
        ("cures (cache off)", str(args.workers), cures_score(False)),
        ("cures", str(args.workers), cures_score(True)),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in scorers}
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # interleaved rounds, so drifting machine load hits every scorer alike
        for name, _, score in scorers:
            cures.clear_caches()
            seconds, results[name] = timed_run(score, samples, args.threads)
            times[name].append(seconds)
    stats = cures.reward_stats()  # counters of the last (cached) run only
    verl_scores = results["verl math_verify"]
    rows = [(name, workers, statistics.median(times[name]), results[name]) for name, workers, _ in scorers]

    base = rows[0][2]
    print()
    widths = (-20, 9, 8, 10, 9, 11, 7)
    header = ("scorer", "workers", "seconds", "answers/s", "speed-up", "mean score", "agree")
    print(" ".join(f"{name:<{-w}}" if w < 0 else f"{name:>{w}}" for name, w in zip(header, widths, strict=True)))
    for name, workers, secs, scores in rows:
        agree = sum(a == b for a, b in zip(scores, verl_scores, strict=True)) / len(scores)
        print(
            f"{name:<20} {workers:>9} {secs:>8.2f} {len(samples) / secs:>10.1f} {base / secs:>8.2f}x "
            f"{sum(scores) / len(scores):>11.3f} {agree:>7.1%}"
        )
    print(
        f"(median of {args.repeats} interleaved rounds; per-round seconds: "
        + "; ".join(f"{name} " + ", ".join(f"{t:.2f}" for t in times[name]) for name, _, _ in scorers)
        + ")"
    )
    print(f"cures cache hits in the cached run: {stats['cache_hits']} of {stats['calls']} calls")

    by_category: dict[str, list[int]] = {}
    for sample, ours, theirs in zip(samples, rows[2][3], verl_scores, strict=True):
        counts = by_category.setdefault(sample.category, [0, 0, 0])
        counts[0] += 1
        counts[1] += int(ours == 1.0)
        counts[2] += int(theirs == 1.0)
    print(f"\n{'category':<16} {'n':>5} {'cures=1':>8} {'verl=1':>7}")
    for category, (num, ours_ok, verl_ok) in by_category.items():
        print(f"{category:<16} {num:>5} {ours_ok:>8} {verl_ok:>7}")
    disagreements = [
        (s.gold, s.response[s.response.rfind("Therefore") :], ours, theirs)
        for s, ours, theirs in zip(samples, rows[2][3], verl_scores, strict=True)
        if ours != theirs
    ]
    if disagreements:
        print("\nfirst disagreements (gold | answer text | cures | verl):")
        for gold, tail, ours, theirs in disagreements[:8]:
            print(f"  {gold} | {tail[:70]} | {ours} | {theirs}")


if __name__ == "__main__":
    main()
