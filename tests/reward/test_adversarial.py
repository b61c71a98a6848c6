"""Adversarial responses: each must come back within the timeout plus a margin, with a valid dict and score 0.

Model outputs are untrusted. These inputs target every layer: the pure-Python box scan (megabytes, unbalanced
braces), math-verify's regexes, latex2sympy's ANTLR parser (deep nesting), sympy (huge powers, factorials,
symbolic determinants), Python's ``eval`` inside ``sympy.parse_expr`` (reached only through the fallback
modes' plain-expression extraction), and the JSON pipe to the worker (NUL bytes, lone surrogates).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("math_verify")

from cures_verl.reward import math_verify as reward  # noqa: E402
from cures_verl.reward.math_verify import RESULT_KEYS, compute_score  # noqa: E402

logger = logging.getLogger(__name__)

TIMEOUT_S = 2.0
# Loose on purpose (these tests ran on a loaded 2-core machine): the hanging inputs run for minutes when nothing
# stops them, so a reward without a working deadline still fails by far. The pool's own tests check that a call
# returns at its deadline, and cures_verl/experiments/reward/latency.py measures how close.
MARGIN_S = 10.0
GOLD = "7"


def boxed(content: str) -> str:
    return "\\boxed{" + content + "}"


def _random_unicode(seed: int, size: int) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(size))


def _symbolic_matrix(size: int) -> str:
    rows = ("&".join(f"x_{{{i * size + j}}}" for j in range(size)) for i in range(size))
    return "\\begin{pmatrix}" + "\\\\".join(rows) + "\\end{pmatrix}"


# (case id, builder of the response given a scratch directory, extraction mode). One comment per case.
ADVERSARIAL_CASES: list[tuple[str, Callable[[Path], str], str]] = [
    # --- sympy blow-ups (killed at the deadline, or refused by the worker's memory limit)
    ("power_tower", lambda _: boxed("2^{2^{2^{100}}}"), "boxed"),  # 2^(2^(2^100)) during numeric comparison
    ("factorial_of_power", lambda _: boxed("10^{10^{10}}!"), "boxed"),  # factorial of a 10-billion-digit number
    ("zeros_matrix", lambda _: boxed("\\operatorname{zeros}(100000, 100000)"), "boxed"),  # 1e10-entry matrix
    ("huge_sum", lambda _: boxed("\\sum_{i=1}^{10^{12}} i"), "boxed"),  # a trillion-term sum
    ("symbolic_determinant", lambda _: boxed("\\det" + _symbolic_matrix(9)), "boxed"),  # 9! symbolic terms
    ("huge_root", lambda _: boxed("\\sqrt[10^{10}]{2}"), "boxed"),  # 10^10-th root
    ("huge_e_notation", lambda _: boxed("1e999999999"), "boxed"),  # exponent notation overflow
    ("division_by_zero", lambda _: boxed("\\frac{1}{0}"), "boxed"),  # zoo
    ("nan_expression", lambda _: boxed("\\infty - \\infty"), "boxed"),  # nan (math-verify refuses to compare)
    # --- parser depth and size (within the 1000-character cap, or rejected by it)
    ("nested_frac_90", lambda _: boxed("\\frac{" * 90 + "1" + "}{2}" * 90), "boxed"),  # deep ANTLR recursion
    ("nested_frac_5000", lambda _: boxed("\\frac{" * 5000 + "1" + "}{2}" * 5000), "boxed"),  # rejected: too long
    ("nested_braces_450", lambda _: boxed("{" * 450 + "1" + "}" * 450), "boxed"),  # deep brace groups
    ("nested_parens_12", lambda _: boxed("(" * 12 + "1" + ")" * 12), "boxed"),  # latex2sympy: ~1 s at 16 levels
    ("long_sum_of_symbols", lambda _: boxed("+".join(["x"] * 450)), "boxed"),  # 450-term expression
    ("long_integer", lambda _: boxed("9" * 999), "boxed"),  # 999-digit number
    ("long_text_in_box", lambda _: boxed("\\text{" + "junk " * 190 + "}"), "boxed"),  # near-cap text
    # --- megabyte strings and unbalanced braces (the pure-Python scan)
    ("megabyte_without_box", lambda _: "a" * (1 << 20), "boxed_or_last_latex"),  # 1 MiB, fallback regexes
    ("megabyte_in_box", lambda _: boxed("1" * (1 << 20)), "boxed"),  # 1 MiB answer: rejected by the cap
    ("unbalanced_open_braces", lambda _: "\\boxed{" + "{" * 100_000, "boxed"),  # never closes
    ("many_box_commands_without_brace", lambda _: "\\boxed " * 100_000, "boxed"),  # 100k skipped candidates
    ("megabyte_of_closing_braces", lambda _: boxed("1") + "}" * (1 << 20), "boxed_or_last_latex"),  # trailing junk
    ("megabyte_of_dollars", lambda _: "$" * (1 << 20), "boxed_or_last_latex"),  # math-env regex stress
    # --- odd characters (through JSON and the parsers)
    ("nul_bytes_in_box", lambda _: boxed("1\x002\x00"), "boxed"),  # NUL bytes
    ("nul_bytes_everywhere", lambda _: "\x00" * 1000 + boxed("\x00"), "boxed"),  # NULs around an empty-ish box
    ("lone_surrogates", lambda _: boxed("\ud800\udfff 5 \udc00"), "boxed"),  # invalid UTF-16 halves
    ("random_unicode", lambda _: boxed(_random_unicode(0, 500)), "boxed"),  # 500 random code points
    ("random_unicode_fallback", lambda _: _random_unicode(1, 5000), "boxed_or_last_latex"),  # through fallback
    ("rtl_combining_emoji", lambda _: boxed("\u202e7\u0301\u0301\U0001f600"), "boxed"),  # bidi, combining, emoji
    # --- code-execution attempts (must never run: the payload would create a file)
    ("python_in_box", lambda d: boxed(f"__import__('os').system('touch {d}/box')"), "boxed"),  # LaTeX path
    ("python_after_answer", lambda d: f"Answer: __import__('os').system('touch {d}/ans')", "boxed_or_last_latex"),
    ("eval_power_dos", lambda _: "Answer: 9**9**9**9", "boxed_or_last_latex"),  # parse_expr eval of digits only
    ("eval_deep_parens", lambda _: "Answer: " + "(" * 150 + "1" + ")" * 150, "boxed_or_last_latex"),  # compile depth
    ("latex_macro_recursion", lambda _: boxed("\\def\\x{\\x}\\x"), "boxed"),  # TeX would loop forever
    ("latex_input_file", lambda _: boxed("\\input{/etc/passwd}"), "boxed"),  # no file access
]


@pytest.fixture(scope="module", autouse=True)
def warm_pool() -> None:
    # Start-up (about 1 s per worker) is not part of the per-call latency being tested.
    pool = reward._get_pool(reward.RewardOptions.from_kwargs({}).num_workers)
    assert pool.wait_ready(60)


# One case per defence, and the flag of the result that shows the defence acted.
DEFENCES = [
    ("symbolic_determinant", "timeout"),  # the deadline: sympy would expand 9! terms for minutes
    ("nested_frac_5000", "pred_too_long"),  # the length cap: never parsed
    ("megabyte_in_box", "pred_too_long"),
    ("many_box_commands_without_brace", "no answer"),  # the box scan: 100k box commands, none with an argument
]


@pytest.mark.parametrize(("case_id", "flag"), DEFENCES, ids=[case_id for case_id, _ in DEFENCES])
def test_each_defence_is_what_stops_its_adversarial_case(case_id: str, flag: str, tmp_path: Path) -> None:
    (build, extraction) = next((b, e) for c, b, e in ADVERSARIAL_CASES if c == case_id)
    result = compute_score(
        data_source="adversarial",
        solution_str=build(tmp_path),
        ground_truth=GOLD,
        extraction=extraction,
        timeout=TIMEOUT_S,
        use_cache=False,
    )
    others = {"timeout", "pred_too_long"} - {flag}
    if flag == "no answer":
        assert result["pred_extracted"] == 0.0
    else:
        assert result[flag] == 1.0
    assert all(result[name] == 0.0 for name in others)
    assert result["score"] == 0.0 and result["gold_parsed"] == 1.0


@pytest.mark.parametrize(("case_id", "build", "extraction"), ADVERSARIAL_CASES, ids=[c[0] for c in ADVERSARIAL_CASES])
def test_adversarial_response_returns_in_time_with_a_valid_zero_score(
    case_id: str,
    build: Callable[[Path], str],
    extraction: str,
    tmp_path: Path,
) -> None:
    response = build(tmp_path)
    start = time.monotonic()
    result = compute_score(
        data_source="adversarial",
        solution_str=response,
        ground_truth=GOLD,
        extraction=extraction,
        timeout=TIMEOUT_S,
        use_cache=False,
    )
    latency = time.monotonic() - start
    logger.info("adversarial %s: %.3f s, %s", case_id, latency, result)
    assert latency < TIMEOUT_S + MARGIN_S, f"{case_id} took {latency:.2f} s"
    assert tuple(result) == RESULT_KEYS
    assert all(isinstance(value, float) and value in (0.0, 1.0) for value in result.values())
    assert result["score"] == 0.0
    assert list(tmp_path.iterdir()) == []  # no injected command ran


def test_a_hanging_gold_also_returns_in_time() -> None:
    # gcd evaluates its arguments while the gold is *parsed*: a 34-million-digit power.
    start = time.monotonic()
    result = compute_score(
        data_source="adversarial", solution_str=boxed("3"), ground_truth="\\gcd(7^{7^{9}}, 5)", timeout=TIMEOUT_S
    )
    assert time.monotonic() - start < TIMEOUT_S + MARGIN_S
    assert result["gold_parsed"] == 0.0 and result["score"] == 0.0
