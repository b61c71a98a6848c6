"""Tests of ``cures_verl.reward.math_verify.compute_score``: table-driven grading, threads, keys, options, golds."""

from __future__ import annotations

import doctest
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("math_verify")

from cures_verl.reward import math_verify as reward  # noqa: E402
from cures_verl.reward.math_verify import RESULT_KEYS, compute_score, reward_stats  # noqa: E402

BOXED = "\\boxed{{{}}}".format


@pytest.fixture(scope="module", autouse=True)
def warm_pool() -> None:
    # Waiting for a worker counts against a call's deadline: start the pool before the first graded call.
    pool = reward._get_pool(reward.RewardOptions.from_kwargs({}).num_workers)
    assert pool.wait_ready(120)


def _symbolic_determinant(size: int) -> str:
    rows = ("&".join(f"x_{{{i * size + j}}}" for j in range(size)) for i in range(size))
    return "\\det\\begin{pmatrix}" + "\\\\".join(rows) + "\\end{pmatrix}"


# (ground truth, response, expected score). One comment per case says what it checks.
GRADING_CASES = [
    # --- fractions and decimals
    ("\\frac{1}{2}", BOXED("0.5"), 1.0),  # fraction vs decimal
    ("0.5", BOXED("\\frac12"), 1.0),  # decimal vs \frac12 shorthand
    ("\\frac{3}{4}", BOXED("\\dfrac{3}{4}"), 1.0),  # \dfrac
    ("\\frac{3}{4}", BOXED("\\tfrac34"), 1.0),  # \tfrac shorthand
    ("\\frac{1}{2}", BOXED("1/2"), 1.0),  # slash fraction
    ("\\frac{1}{3}", BOXED("0.333333"), 0.0),  # a truncated decimal is not the fraction (math-verify: 1)
    ("\\frac{1}{3}", BOXED("0.33"), 0.0),  # too coarse a decimal is wrong
    ("0.5", BOXED("0.51"), 0.0),  # a nearby decimal is wrong
    ("2", BOXED("\\frac{4}{2}"), 1.0),  # unsimplified fraction
    ("\\sqrt{8}", BOXED("2\\sqrt{2}"), 1.0),  # equivalent radicals
    ("\\frac{\\sqrt{2}}{2}", BOXED("\\sqrt{2}/2"), 1.0),  # radical fraction forms
    # --- negative numbers
    ("-3", BOXED("-3"), 1.0),  # negative integer
    ("-3", BOXED("3"), 0.0),  # sign matters
    ("-\\frac{1}{2}", BOXED("-0.5"), 1.0),  # negative fraction vs decimal
    ("-5", BOXED("- 5"), 1.0),  # space after the minus sign
    # --- sets, intervals, tuples
    ("\\{1,2,3\\}", BOXED("\\{3,2,1\\}"), 1.0),  # set order does not matter
    ("1,2,3", BOXED("\\{1,2,3\\}"), 1.0),  # comma list vs braces
    ("2, 3", BOXED("3, 2"), 1.0),  # comma list order does not matter
    ("2, 3", BOXED("2"), 0.0),  # a missing element is wrong
    ("(1,2]", BOXED("(1, 2]"), 1.0),  # half-open interval with spacing
    ("x \\in (1,2]", BOXED("(1,2]"), 1.0),  # interval with membership vs bare interval
    ("[1,2)", BOXED("(1,2)"), 0.0),  # open vs half-open interval
    ("\\left(1,2\\right)", BOXED("(1,2)"), 1.0),  # \left( \right) delimiters
    # --- matrices and vectors
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", BOXED("\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"), 1.0),  # pmatrix
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", BOXED("\\begin{pmatrix}2\\\\1\\end{pmatrix}"), 0.0),  # order matters
    # --- units, text, currency, degrees
    ("10", BOXED("10\\text{ meters}"), 1.0),  # trailing unit text
    ("5", BOXED("5\\text{ cm}"), 1.0),  # unit in \text
    ("\\$10", BOXED("10"), 1.0),  # currency sign in the gold
    ("10", BOXED("\\$10.00"), 1.0),  # currency sign and cents in the answer
    ("30", BOXED("30^\\circ"), 1.0),  # degree sign
    ("\\text{Monday}", BOXED("\\text{monday}"), 1.0),  # text answer, case-insensitive
    ("\\text{east}", BOXED("\\text{west}"), 0.0),  # different text answers
    ("B", BOXED("\\text{(B)}"), 1.0),  # multiple-choice letter in parentheses
    ("1000", BOXED("1{,}000"), 1.0),  # thousands separator {,}
    ("1000", BOXED("1,000"), 1.0),  # thousands separator ,
    ("1000", BOXED("1\\,000"), 1.0),  # thin-space thousands separator (our normalisation; math-verify says 1*0)
    ("0", BOXED("1\\,000"), 0.0),  # ...and it no longer equals 0
    # --- percentages (our percent rewrite; math-verify alone cannot parse \boxed{50\%})
    ("50\\%", BOXED("50\\%"), 1.0),  # same percentage
    ("50\\%", BOXED("0.5"), 1.0),  # percentage vs its fraction
    ("50\\%", BOXED("50"), 1.0),  # percentage vs the bare number
    ("0.5", BOXED("50\\%"), 1.0),  # gold fraction, answer in percent
    ("50\\%", BOXED("40\\%"), 0.0),  # different percentage
    ("12.5\\%", BOXED("12.5%"), 1.0),  # decimal percentage, bare % sign
    # --- equations and symbols
    ("3", BOXED("x=3"), 1.0),  # assignment vs value
    ("k=3", BOXED("3"), 1.0),  # value vs assignment in the gold
    ("x^2+2x+1", BOXED("(x+1)^2"), 1.0),  # symbolic equality after expansion
    ("x^2", BOXED("x^{2}"), 1.0),  # brace variants
    ("\\frac{\\pi}{4}", BOXED("45^\\circ"), 1.0),  # 45 degrees is pi/4 (the unit rule; math-verify: 0)
    ("\\pi", BOXED("3.14159265"), 0.0),  # a decimal is never pi (math-verify: 1, equal to 6 places)
    ("\\infty", BOXED("\\infty"), 1.0),  # infinity
    ("1+i", BOXED("i+1"), 1.0),  # complex numbers
    # --- LaTeX surroundings, multiple boxes, no box
    ("5", "We get $\\boxed{5}$.", 1.0),  # box inside inline math
    ("5", "\\[\\boxed{5}\\]", 1.0),  # box inside display math
    ("5", "\\fbox{5}", 1.0),  # \fbox
    ("5", BOXED("5."), 1.0),  # trailing period inside the box (our normalisation)
    ("5", "First \\boxed{3}, corrected: \\boxed{5}", 1.0),  # only the last box counts
    ("3", "First \\boxed{3}, corrected: \\boxed{5}", 0.0),  # ... so an earlier correct box does not
    ("5", "The answer is 5.", 0.0),  # no box: 0 in the default "boxed" mode
    ("5", "\\boxed{5", 0.0),  # unclosed box (truncated response)
    ("5", "\\boxed{}", 0.0),  # empty box
    ("\\boxed{7}", BOXED("7"), 1.0),  # gold given already boxed
    ("5", "Long reasoning. " * 500 + BOXED("5"), 1.0),  # long reasoning before the box
]


@pytest.mark.parametrize(("ground_truth", "response", "expected"), GRADING_CASES)
def test_grading_table(ground_truth: str, response: str, expected: float) -> None:
    result = compute_score(data_source="test", solution_str=response, ground_truth=ground_truth, timeout=30)
    assert result["score"] == expected, result
    assert result["acc"] == expected
    assert result["timeout"] == 0.0 and result["worker_error"] == 0.0


def test_module_doctests_pass() -> None:
    results = doctest.testmod(reward)
    assert results.attempted > 0
    assert results.failed == 0


@pytest.mark.parametrize(
    ("response", "extraction", "expected"),
    [
        # Anchored plain number: only the fallback modes see it.
        ("so the final answer is 42", "boxed", 0.0),
        ("so the final answer is 42", "boxed_or_answer", 1.0),
        ("so the final answer is 42", "boxed_or_last_latex", 1.0),
        # "Answer:" anchor with LaTeX.
        ("Answer: $\\frac{84}{2}$", "boxed_or_answer", 1.0),
        # Unanchored LaTeX: only boxed_or_last_latex takes the last math environment.
        ("we get $x = 42$ in the end", "boxed_or_answer", 0.0),
        ("we get $x = 42$ in the end", "boxed_or_last_latex", 1.0),
        # A box wins over any later plain number, in every mode.
        ("\\boxed{42} (checked with 41 other cases)", "boxed_or_last_latex", 1.0),
        # The fallback only reads the tail (max_answer_chars characters).
        ("the final answer is 42. " + "x" * 2000, "boxed_or_answer", 0.0),
    ],
)
def test_extraction_modes(response: str, extraction: str, expected: float) -> None:
    result = compute_score(
        data_source="test", solution_str=response, ground_truth="42", extraction=extraction, timeout=30
    )
    assert result["score"] == expected, result


def test_fallback_modes_flag_found_but_unparseable_answers() -> None:
    result = compute_score(
        data_source="t", solution_str="Answer: $\\frac{$", ground_truth="1", extraction="boxed_or_last_latex"
    )
    assert result["score"] == 0.0


def test_threading_thread_regression_scores_a_correct_answer_1() -> None:
    # verl calls compute_score from run_in_executor threads; math-verify's signal.alarm would fail there.
    results: list[dict[str, float]] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(compute_score(data_source="t", solution_str=BOXED("\\frac{2}{4}"), ground_truth="0.5"))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not errors
    assert results and results[0]["score"] == 1.0


def test_thread_pool_executor_regression_scores_correct_answers_1() -> None:
    answers = [(str(k), BOXED(f"\\frac{{{2 * k}}}{{2}}")) for k in range(40)]

    def score(gold: str, text: str) -> float:
        return compute_score(data_source="t", solution_str=text, ground_truth=gold, use_cache=False)["score"]

    with ThreadPoolExecutor(max_workers=16) as executor:
        futures = [executor.submit(score, gold, text) for gold, text in answers]
        scores = [future.result(timeout=120) for future in futures]
    assert scores == [1.0] * len(answers)


def test_verl_style_call_with_keyword_arguments_and_extra_info() -> None:
    # Exactly what NaiveRewardManager.run_single passes (verl 0.9.1), plus verl's optional router kwargs.
    result = compute_score(
        data_source="math",
        solution_str=BOXED("2"),
        ground_truth="2",
        extra_info={"index": 3, "num_turns": 2, "rollout_reward_scores": {}},
        reward_router_address=None,
        reward_model_tokenizer=None,
    )
    assert result["score"] == 1.0


@settings(max_examples=40, deadline=None)
@given(content=st.text(max_size=60), gold=st.sampled_from(["1", "\\frac{1}{2}", "x", "\\{1,2\\}"]))
def test_every_result_has_the_same_keys_and_0_1_values(content: str, gold: str) -> None:
    for response in (BOXED(content), content):
        result = compute_score(data_source="t", solution_str=response, ground_truth=gold, timeout=5)
        assert tuple(result) == RESULT_KEYS
        assert all(value in (0.0, 1.0) and isinstance(value, float) for value in result.values())
        assert result["score"] == result["acc"]


def test_every_outcome_kind_has_the_same_keys() -> None:
    outcomes = [
        compute_score(data_source="t", solution_str=BOXED("1"), ground_truth="1"),  # correct
        compute_score(data_source="t", solution_str=BOXED("2"), ground_truth="1"),  # wrong
        compute_score(data_source="t", solution_str="no box", ground_truth="1"),  # no answer
        compute_score(data_source="t", solution_str=BOXED("9" * 2000), ground_truth="1"),  # too long
        compute_score(data_source="t", solution_str=BOXED("1"), ground_truth="\\frac{"),  # gold unparseable
        compute_score(data_source="t", solution_str=BOXED("1"), ground_truth=None, invalid_gold="flag"),  # bad gold
        compute_score(data_source="t", solution_str=BOXED(_symbolic_determinant(9)), ground_truth="1", timeout=1),
    ]
    assert all(tuple(result) == RESULT_KEYS for result in outcomes)
    assert [result["score"] for result in outcomes] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert outcomes[2]["pred_extracted"] == 0.0 and outcomes[2]["gold_parsed"] == 1.0
    assert outcomes[3]["pred_too_long"] == 1.0 and outcomes[3]["pred_extracted"] == 1.0
    assert outcomes[3]["gold_parsed"] == 1.0
    assert outcomes[4]["gold_parsed"] == 0.0 and outcomes[4]["pred_parsed"] == 1.0
    assert outcomes[5]["gold_parsed"] == 0.0
    assert outcomes[6]["timeout"] == 1.0 and outcomes[6]["gold_parsed"] == 1.0
    # gold_unparseable marks exactly the rows whose ground truth is at fault (broken, missing)
    assert [result["gold_unparseable"] for result in outcomes] == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_unparseable_gold_is_distinct_from_wrong_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    gold = "\\frac{1}{ \\unknowncommand{"
    before = reward_stats()["gold_unparsed"]
    with caplog.at_level(logging.WARNING, logger="cures_verl.reward.math_verify"):
        first = compute_score(data_source="t", solution_str=BOXED("1"), ground_truth=gold)
        second = compute_score(data_source="t", solution_str=BOXED("2"), ground_truth=gold)
    assert first["score"] == second["score"] == 0.0
    assert first["gold_parsed"] == second["gold_parsed"] == 0.0
    wrong = compute_score(data_source="t", solution_str=BOXED("2"), ground_truth="1")
    assert wrong["score"] == 0.0 and wrong["gold_parsed"] == 1.0  # a wrong answer keeps gold_parsed=1
    assert reward_stats()["gold_unparsed"] - before == 2
    assert first["gold_unparseable"] == second["gold_unparseable"] == 1.0 and wrong["gold_unparseable"] == 0.0
    assert sum("cannot be parsed" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.parametrize("use_cache", [True, False])
def test_responses_without_an_answer_still_report_whether_the_gold_parses(use_cache: bool) -> None:
    # gold_parsed must not drop to 0 just because the response had no box (it would look like a broken dataset).
    broken_gold = "\\frac{2}{ \\alsounknown{"
    for response in ("no box here", BOXED("9" * 2000), BOXED(" ")):
        good = compute_score(data_source="t", solution_str=response, ground_truth="2", use_cache=use_cache)
        bad = compute_score(data_source="t", solution_str=response, ground_truth=broken_gold, use_cache=use_cache)
        assert good["score"] == bad["score"] == 0.0
        assert good["gold_parsed"] == 1.0
        assert bad["gold_parsed"] == 0.0


def test_several_accepted_gold_answers_match_any_of_them() -> None:
    for answer in ("3", "-3"):
        result = compute_score(data_source="t", solution_str=BOXED(answer), ground_truth=["3", "-3"])
        assert result["score"] == 1.0
    assert compute_score(data_source="t", solution_str=BOXED("4"), ground_truth=["3", "-3"])["score"] == 0.0


@pytest.mark.parametrize("ground_truth", [12, 12.0])
def test_numeric_ground_truth(ground_truth: float) -> None:
    assert compute_score(data_source="t", solution_str=BOXED("12"), ground_truth=ground_truth)["score"] == 1.0


@pytest.mark.parametrize("ground_truth", [None, "", "   ", "\\boxed{}", float("nan"), [], {"answer": "1"}])
def test_a_missing_or_empty_gold_scores_0_with_the_flag_by_default_and_never_raises(ground_truth: object) -> None:
    # In verl's reward loop an exception here would end a training run hours in.
    before = reward_stats()["invalid_gold"]
    result = compute_score(data_source="bad_ds", solution_str=BOXED("1"), ground_truth=ground_truth)
    assert tuple(result) == RESULT_KEYS
    assert result["score"] == 0.0 and result["gold_unparseable"] == 1.0 and result["gold_parsed"] == 0.0
    assert reward_stats()["invalid_gold"] - before == 1


def test_an_unparseable_gold_scores_0_with_the_flag() -> None:
    result = compute_score(data_source="t", solution_str=BOXED("1"), ground_truth="\\frac{1}{")
    assert result["score"] == 0.0 and result["gold_unparseable"] == 1.0 and result["worker_error"] == 0.0


def test_invalid_gold_raise_policy_names_the_data_source_and_the_default() -> None:
    with pytest.raises(TypeError, match=r"ground_truth.*data_source='bad_ds'.*invalid_gold='flag'"):
        compute_score(data_source="bad_ds", solution_str=BOXED("1"), ground_truth=None, invalid_gold="raise")
    with pytest.raises(ValueError, match=r"empty.*data_source='bad_ds'"):
        compute_score(data_source="bad_ds", solution_str=BOXED("1"), ground_truth="", invalid_gold="raise")


def test_invalid_gold_flag_policy_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    before = reward_stats()["invalid_gold"]
    with caplog.at_level(logging.ERROR, logger="cures_verl.reward.math_verify"):
        for _ in range(3):
            result = compute_score(data_source="t", solution_str=BOXED("1"), ground_truth={"x": 1}, invalid_gold="flag")
            assert result["score"] == 0.0 and result["gold_parsed"] == 0.0
    assert reward_stats()["invalid_gold"] - before == 3
    assert sum("invalid ground truth" in record.getMessage() for record in caplog.records) == 1


def test_non_string_response_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="solution_str"):
        compute_score(data_source="t", solution_str=None, ground_truth="1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"extration": "boxed"}, TypeError, "unknown option"),  # typo in an option name
        ({"extraction": "last_number"}, ValueError, "extraction"),  # unknown mode
        ({"timeout": 0}, ValueError, "timeout"),  # non-positive timeout
        ({"timeout": float("inf")}, ValueError, "timeout"),  # infinite timeout
        ({"timeout": "5"}, TypeError, "timeout"),  # string timeout
        ({"num_workers": 0}, ValueError, "num_workers"),  # no workers
        ({"max_answer_chars": 0}, ValueError, "max_answer_chars"),  # zero cap
        ({"invalid_gold": "ignore"}, ValueError, "invalid_gold"),  # unknown policy
        ({"use_cache": "yes"}, TypeError, "use_cache"),  # non-bool flag
    ],
)
def test_bad_options_raise_naming_the_option(options: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        compute_score(data_source="t", solution_str=BOXED("1"), ground_truth="1", **options)


def test_environment_variables_set_defaults_and_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(reward.ENV_TIMEOUT, "2.5")
    assert reward.RewardOptions.from_kwargs({}).timeout == 2.5
    assert reward.RewardOptions.from_kwargs({"timeout": 7}).timeout == 7.0
    monkeypatch.setenv(reward.ENV_NUM_WORKERS, "3")
    assert reward.RewardOptions.from_kwargs({}).num_workers == 3
    monkeypatch.setenv(reward.ENV_NUM_WORKERS, "three")
    with pytest.raises(ValueError, match=reward.ENV_NUM_WORKERS):
        reward.RewardOptions.from_kwargs({})


def test_a_different_pool_size_for_a_running_pool_is_an_error() -> None:
    compute_score(data_source="t", solution_str=BOXED("1"), ground_truth="1")  # make sure the pool exists
    size = reward._STATE.pool.num_workers if reward._STATE.pool is not None else 1
    with pytest.raises(ValueError, match="shutdown_pool"):
        compute_score(data_source="t", solution_str=BOXED("3"), ground_truth="1", num_workers=size + 1)


def test_cache_gives_the_same_results_as_fresh_verification() -> None:
    cases = [("\\frac{1}{2}", BOXED("0.5")), ("2", BOXED("3")), ("x", BOXED("@#")), ("\\frac{", BOXED("1"))]
    for gold, response in cases:
        fresh = compute_score(data_source="t", solution_str=response, ground_truth=gold, use_cache=False)
        compute_score(data_source="t", solution_str=response, ground_truth=gold)
        hits = reward_stats()["cache_hits"]
        cached = compute_score(data_source="t", solution_str=response, ground_truth=gold)
        assert reward_stats()["cache_hits"] == hits + 1
        assert cached == fresh


def test_timeouts_are_not_cached_and_a_hanging_gold_is_remembered() -> None:
    reward.clear_caches()
    hanging = BOXED(_symbolic_determinant(9))  # 9! symbolic terms: runs past the deadline
    first = compute_score(data_source="t", solution_str=hanging, ground_truth="1", timeout=1)
    assert first["timeout"] == 1.0
    second = compute_score(data_source="t", solution_str=hanging, ground_truth="1", timeout=1)
    assert second["timeout"] == 1.0  # verified again, not served from the cache
    assert reward_stats()["cache_hits"] == 0
    # A gold whose *parsing* hangs (gcd of a 34-million-digit power) is remembered: its next rollouts return at once.
    slow_gold = "\\gcd(7^{7^{9}}, 6)"
    hung = compute_score(data_source="t", solution_str=BOXED("3"), ground_truth=slow_gold, timeout=1)
    assert hung["timeout"] == 1.0 and hung["gold_parsed"] == 0.0
    assert reward_stats()["gold_timeouts"] == 1
    again = compute_score(data_source="t", solution_str=BOXED("4"), ground_truth=slow_gold, timeout=1)
    assert again["timeout"] == 0.0 and again["gold_parsed"] == 0.0 and again["score"] == 0.0
    assert reward_stats()["timeouts"] == 3


def test_check_ground_truths_gives_a_reason_per_row_and_respects_its_deadline() -> None:
    import time

    verdicts = reward.check_ground_truths(["(3,4),(4,3)", "", None, "\\frac{1}{", "(3,4),(4,3)"])
    assert verdicts[0] is None and verdicts[4] is None
    assert "empty" in str(verdicts[1]) and "NoneType" in str(verdicts[2]) and verdicts[3] == "cannot be parsed"
    late = reward.check_ground_truths(["17", ""], deadline=time.monotonic() - 1)
    assert late == [reward.NOT_CHECKED, late[1]] and "empty" in str(late[1])  # empties need no worker
