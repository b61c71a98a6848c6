"""compute_score from many threads at once, as verl's reward loop calls it, with a hanging response among them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("math_verify")

from cures_verl.reward import math_verify as reward  # noqa: E402
from cures_verl.reward.math_verify import compute_score  # noqa: E402


def _symbolic_determinant(size: int) -> str:
    rows = ("&".join(f"x_{{{i * size + j}}}" for j in range(size)) for i in range(size))
    return "\\det\\begin{pmatrix}" + "\\\\".join(rows) + "\\end{pmatrix}"


# sympy expands this 9x9 symbolic determinant (9! terms) for minutes.
HANGING_RESPONSE = "So the answer is $\\boxed{" + _symbolic_determinant(9) + "}$."


def test_a_hanging_response_among_fast_ones_times_out_alone_and_the_pool_stays_whole() -> None:
    num_workers = reward.RewardOptions.from_kwargs({}).num_workers
    pool = reward._get_pool(num_workers)
    assert pool.wait_ready(60)
    reward.clear_caches()
    # (response, gold, expected score): correct and wrong answers, each with its own gold, and one hanging answer.
    calls = [(f"so $x = \\boxed{{\\frac{{{2 * k}}}{{4}}}}$", f"{k}/2", 1.0) for k in range(1, 25)]
    calls += [(f"so $x = \\boxed{{{k + 1}}}$", f"{k}", 0.0) for k in range(100, 112)]
    calls.insert(5, (HANGING_RESPONSE, "7", 0.0))

    def score(call: tuple[str, str, float]) -> dict[str, float]:
        response, gold, _ = call
        timeout = 3.0 if response is HANGING_RESPONSE else 60.0
        return compute_score(data_source="t", solution_str=response, ground_truth=gold, timeout=timeout)

    with ThreadPoolExecutor(max_workers=8) as executor:
        results = list(executor.map(score, calls))

    hanging = results.pop(5)
    calls.pop(5)
    assert hanging["timeout"] == 1.0 and hanging["score"] == 0.0 and hanging["gold_parsed"] == 1.0
    assert [result["score"] for result in results] == [expected for _, _, expected in calls]
    assert not any(result["timeout"] or result["worker_error"] for result in results)
    stats = reward.reward_stats()
    assert stats["timeouts"] == 1 and stats["gold_timeouts"] == 0 and stats["worker_errors"] == 0
    # The pool is whole again and serves: num_workers lendable workers plus one warm standby per concurrent caller
    # beyond them (up to 8 callers here; the one that stood in for the hanging call went back to the standbys).
    assert reward._get_pool(num_workers) is pool
    size = max(num_workers, pool._peak_callers)
    assert num_workers <= size <= max(num_workers, 8)
    deadline = time.monotonic() + 60
    while not (pool.wait_ready(0.1) and len(pool.worker_pids()) == size) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.wait_ready(0.1) and len(pool.worker_pids()) == size
    again = compute_score(data_source="t", solution_str="\\boxed{0.75}", ground_truth="3/4", use_cache=False)
    assert again["score"] == 1.0
