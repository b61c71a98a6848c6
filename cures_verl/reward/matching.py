r"""Answer matching for the math reward: notation rewrites, multi-answer structure and exact comparison.

This module runs inside the reward's worker processes (``_worker.py`` loads it by file path, so it imports only
the standard library, sympy, math-verify and its stdlib-only sibling ``boxes.py``, loaded the same way, never
``cures_verl``), where a hung or crashed call only costs the
request's deadline. It can also be imported normally (``cures_verl.reward.matching``) for tests and benchmarks;
it never executes the text it is given (sympy's string parser is never called on it), but parsing and
comparison are not time-bounded here, so untrusted text belongs in a worker.

Pipeline for one answer (gold or prediction), documented rule by rule in ``docs/reward.md``:

1. :func:`normalize_text`: Unicode symbols to LaTeX, math delimiters and ``\left``/``\right`` dropped, repeating
   decimals to exact fractions, thin-space thousands separators and trailing periods removed.
2. :func:`split_items`: the text (or the contents of every box in it) is split at top-level separators
   (``,``, ``;``, "and", "or", ``\quad``, ``\\``) into items; brackets and braces group.
3. Each item is parsed with math-verify (``\boxed{item}``), after the item-level rewrites: percent suffix,
   set-builder notation, scientific e-notation. Decimal literals become the exact rationals they denote.
4. Items become *solutions*: values, or records of ``name = value`` assignments (consecutive assignments to
   different names form one record, e.g. ``x = 2, y = 3``).
5. :func:`answers_match`: order-insensitive comparison of the two solution lists (every gold solution is
   matched by a predicted one and vice versa), each solution compared by :func:`values_equal`.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import mpmath
import sympy
from math_verify import LatexExtractionConfig, parse, verify
from sympy.core.relational import Relational
from sympy.logic.boolalg import And, Or

__all__ = [
    "ABS_TOLERANCE",
    "MAX_ITEMS",
    "REL_TOLERANCE",
    "Answer",
    "Record",
    "Value",
    "answer_from_expressions",
    "answers_match",
    "multipart_match",
    "box_contents",
    "normalize_text",
    "parse_answer",
    "split_items",
    "values_equal",
]

logger = logging.getLogger(__name__)

REL_TOLERANCE = Fraction(1, 10**12)
"""Relative tolerance between two decimal numerals (see :func:`numerals_equal`)."""
ABS_TOLERANCE = Fraction(1, 10**15)
"""Absolute tolerance between two decimal numerals (see :func:`numerals_equal`)."""
MAX_ITEMS = 32
"""Answers with more top-level items than this are compared as a whole only (math-verify's own reading)."""
MAX_EXPONENT = 400
"""Largest ``|k|`` of an e-notation literal ``mEk`` that is rewritten to an exact number."""
_MAX_DEPTH = 3  # nested boxes / set-builder recursion

_LATEX_CONFIG = (LatexExtractionConfig(boxed_match_priority=0),)

# ------------------------------------------------------------------------------------------- text normalisation

_UNICODE_MAP = {
    "\u2212": "-",  # minus sign
    "\u2012": "-",
    "\u2013": "-",  # en dash, commonly typed for a minus
    "\ufe63": "-",
    "\uff0d": "-",
    "\u00d7": r" \times ",
    "\u2715": r" \times ",
    "\u22c5": r" \cdot ",
    "\u00b7": r" \cdot ",
    "\u2219": r" \cdot ",
    "\u00f7": r" \div ",
    "\u2215": "/",
    "\u2044": "/",
    "\u221e": r"\infty ",
    "\u03c0": r"\pi ",
    "\u00b0": r"^{\circ}",
    "\u2218": r"^{\circ}",
    "\u2032": "'",
    "\u2264": r" \le ",
    "\u2a7d": r" \le ",
    "\u2265": r" \ge ",
    "\u2a7e": r" \ge ",
    "\u2260": r" \neq ",
    "\u2248": r" \approx ",
    "\u2208": r" \in ",
    "\u2209": r" \notin ",
    "\u222a": r" \cup ",
    "\u2229": r" \cap ",
    "\u2216": r" \setminus ",
    "\u2205": r"\emptyset ",
    "\u211d": r"\mathbb{R}",
    "\u2124": r"\mathbb{Z}",
    "\u2115": r"\mathbb{N}",
    "\u211a": r"\mathbb{Q}",
    "\u2102": r"\mathbb{C}",
    "\u00b1": r" \pm ",
    "\u2213": r" \mp ",
    "\u2026": r"\ldots ",
    "\u22ef": r"\cdots ",
    "\u2223": r" \mid ",
    "\u27e8": "(",
    "\u27e9": ")",
    "\u2329": "(",
    "\u232a": ")",
    "\u2227": r" \land ",
    "\u2228": r" \lor ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",
    "\ufeff": "",
}
_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "ζ": "zeta",
    "η": "eta",
    "θ": "theta",
    "ι": "iota",
    "κ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "ν": "nu",
    "ξ": "xi",
    "ρ": "rho",
    "σ": "sigma",
    "τ": "tau",
    "φ": "phi",
    "χ": "chi",
    "ψ": "psi",
    "ω": "omega",
    "Δ": "Delta",
    "Ω": "Omega",
    "Φ": "Phi",
    "Θ": "Theta",
}
_UNICODE_MAP.update({char: f"\\{name} " for char, name in _GREEK.items()})
_VULGAR_FRACTIONS = {
    "½": (1, 2),
    "⅓": (1, 3),
    "⅔": (2, 3),
    "¼": (1, 4),
    "¾": (3, 4),
    "⅕": (1, 5),
    "⅖": (2, 5),
    "⅗": (3, 5),
    "⅘": (4, 5),
    "⅙": (1, 6),
    "⅚": (5, 6),
    "⅐": (1, 7),
    "⅛": (1, 8),
    "⅜": (3, 8),
    "⅝": (5, 8),
    "⅞": (7, 8),
    "⅑": (1, 9),
    "⅒": (1, 10),
}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni")
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ]+")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉₊₋", "0123456789+-")
_SUBSCRIPT_RUN = re.compile("[₀₁₂₃₄₅₆₇₈₉₊₋]+")
_RADICALS = {"√": "", "∛": "[3]", "∜": "[4]"}
_RADICAL = re.compile(r"([√∛∜])\s*(\d+(?:\.\d+)?|[A-Za-z]|\\[A-Za-z]+|\([^()]{0,200}\)|\{[^{}]{0,200}\})?")
_COMBINING_OVERLINE = re.compile(r"(\d*)\.(\d*?)((?:\d[\u0305\u0304])+)")

# Repeating decimals. Each pattern leaves "int part", "non-repeating digits", "repeating digits" to the caller.
_REPEAT_BAR = re.compile(r"(?<![\d.])(\d*)\.(\d*)\s*\\(?:overline|bar|overbar)\s*(?:\{\s*(\d{1,60})\s*\}|(\d))")
_DOT_DIGIT = r"\\dot\s*(?:\{\s*(\d)\s*\}|(\d))"
_REPEAT_TWO_DOTS = re.compile(r"(?<![\d.])(\d*)\.(\d*)\s*" + _DOT_DIGIT + r"(\d{0,60})\s*" + _DOT_DIGIT)
_REPEAT_ONE_DOT = re.compile(r"(?<![\d.])(\d*)\.(\d*)\s*" + _DOT_DIGIT)
_REPEAT_PAREN = re.compile(r"(?<![\d.])(\d*)\.(\d*)\((\d{1,60})\)")
_REPEAT_ELLIPSIS = re.compile(r"(?<![\d.])(\d*)\.(\d{2,60})\s*(?:\\ldots|\\cdots|\\dots|\.\.\.)")

_LEFT_RIGHT = re.compile(r"\\(?:left|right|middle|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![A-Za-z])\s*")
_DELIMITERS = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$|\\displaystyle(?![A-Za-z])|\\!")
_THIN_SPACE_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\ |~|\{,\})(?=\d{3}(?!\d))")
_COMMA_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_SPACES = re.compile(r"\s+")
_SPACING = re.compile(r"\\[,;: ]|~")


def _map_unicode(text: str) -> str:
    if text.isascii():
        return text
    text = _COMBINING_OVERLINE.sub(lambda m: _repeating(m.group(1), m.group(2), re.sub(r"\D", "", m.group(3))), text)
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group().translate(_SUPERSCRIPTS) + "}", text)
    text = _SUBSCRIPT_RUN.sub(lambda m: "_{" + m.group().translate(_SUBSCRIPTS) + "}", text)

    def radical(match: re.Match[str]) -> str:
        index = _RADICALS[match.group(1)]
        arg = match.group(2)
        if arg is None:
            return "\\sqrt" + index
        if arg[0] in "({" and arg[-1] in ")}":
            arg = arg[1:-1]
        return "\\sqrt" + index + "{" + arg + "}"

    text = _RADICAL.sub(radical, text)
    out = []
    for position, char in enumerate(text):
        if char in _VULGAR_FRACTIONS:
            numerator, denominator = _VULGAR_FRACTIONS[char]
            mixed = position > 0 and text[position - 1].isdigit()
            out.append((" " if mixed else "") + f"\\frac{{{numerator}}}{{{denominator}}}")
        else:
            out.append(_UNICODE_MAP.get(char, char))
    return unicodedata.normalize("NFKC", "".join(out))


def _repeating(integer: str, fixed: str, period: str) -> str:
    """``integer.fixed(period)(period)...`` as an exact ``\\frac``: (IFP - IF) / ((10^p - 1) 10^f)."""
    head = int(integer + fixed) if (integer + fixed) else 0
    numerator = int(integer + fixed + period) - head
    denominator = (10 ** len(period) - 1) * 10 ** len(fixed)
    value = Fraction(numerator, denominator)
    if value.denominator == 1:
        return str(value.numerator)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _ellipsis_period(digits: str) -> tuple[str, str] | None:
    """Split ``digits`` into (non-repeating, period) when its tail is at least two copies of a period."""
    for start in range(len(digits) - 1):
        tail = digits[start:]
        for length in range(1, len(tail) // 2 + 1):
            if all(tail[i] == tail[i - length] for i in range(length, len(tail))):
                return digits[:start], tail[:length]
    return None


def _rewrite_repeating_decimals(text: str) -> str:
    if "." not in text:
        return text
    text = _REPEAT_BAR.sub(lambda m: _repeating(m.group(1), m.group(2), m.group(3) or m.group(4)), text)

    # Dots over the first and last digit of the period (0.\dot{1}4285\dot{7}), or over a single repeating digit.
    text = _REPEAT_TWO_DOTS.sub(
        lambda m: _repeating(
            m.group(1), m.group(2), (m.group(3) or m.group(4)) + m.group(5) + (m.group(6) or m.group(7))
        ),
        text,
    )
    text = _REPEAT_ONE_DOT.sub(lambda m: _repeating(m.group(1), m.group(2), m.group(3) or m.group(4)), text)
    text = _REPEAT_PAREN.sub(lambda m: _repeating(m.group(1), m.group(2), m.group(3)), text)

    def ellipsis(match: re.Match[str]) -> str:
        split = _ellipsis_period(match.group(2))
        if split is None:  # no visible period: an ordinary (truncated) decimal
            return f"{match.group(1) or '0'}.{match.group(2)}"
        return _repeating(match.group(1), *split)

    return _REPEAT_ELLIPSIS.sub(ellipsis, text)


def normalize_text(text: str) -> str:
    r"""Rewrite notations math-verify misreads into ones it reads; the result is what gets split and parsed.

    Rules (each one is a row of the notation table in ``docs/reward.md``): Unicode symbols become LaTeX
    (``30°`` -> ``30^{\circ}``, ``∞`` -> ``\infty``, ``√2`` -> ``\sqrt{2}``, ``x²`` -> ``x^{2}``, ``½`` ->
    ``\frac{1}{2}``, the minus sign U+2212 -> ``-``, Greek letters, set symbols); ``$``, ``\(``, ``\[`` and
    ``\left``/``\right`` sizes are dropped; ``\langle``/``\rangle`` become parentheses; repeating decimals
    (``0.\overline{3}``, ``0.1\dot{6}``, ``0.\dot{1}4285\dot{7}``, ``0.(3)``, ``0.3̅``, ``0.333\ldots``) become
    exact fractions; thin-space and ``{,}`` thousands separators go; trailing periods go.

    Example:
        >>> normalize_text(r"0.\overline{3}"), normalize_text("30°"), normalize_text("1\\,000.")
        ('\\frac{1}{3}', '30^{\\circ}', '1000')
        >>> normalize_text("0.1666..."), normalize_text("3.14159...")
        ('\\frac{1}{6}', '3.14159')
    """
    text = _map_unicode(text)
    text = text.replace("\\$", " ")  # a currency sign, before "$" is read as a math delimiter
    text = _DELIMITERS.sub(" ", text)
    text = _LEFT_RIGHT.sub("", text)
    text = text.replace("\\langle", "(").replace("\\rangle", ")").replace("\\varnothing", "\\emptyset")
    text = text.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    text = _THIN_SPACE_THOUSANDS.sub("", text)
    text = _SPACING.sub(" ", text)
    text = _rewrite_repeating_decimals(text)
    text = _SPACES.sub(" ", text).strip()
    while text.endswith(".") and not text.endswith("\\."):
        text = text[:-1].rstrip()
    if _COMMA_THOUSANDS.match(text):
        text = text.replace(",", "")
    return text


# ------------------------------------------------------------------------------------------------------ boxes


if TYPE_CHECKING or __package__:
    from cures_verl.reward import boxes as _boxes
else:  # loaded by file path in a worker, which loaded boxes.py the same way first (_worker._load_sibling)
    _boxes = sys.modules["_cures_reward_boxes"]
box_contents = _boxes.box_contents
_matching_brace = _boxes.matching_brace


# ----------------------------------------------------------------------------------------------------- splitting

_OPENERS = "([{"
_CLOSERS = ")]}"
_WORD_SEPARATORS = {"and": "and", "or": "or"}
_COMMAND_SEPARATORS = {
    "quad": ",",
    "qquad": ",",
    "lor": "or",
    "vee": "or",
    "land": "and",
    "wedge": "and",
    "text": "",  # decided by the \text{} argument, see below
    "textrm": "",
    "textnormal": "",
    "mbox": "",
    "mathrm": "",
}
_COMMAND_NAME = re.compile(r"[A-Za-z]+")
_TEXT_SEPARATOR = re.compile(r"^\s*(,?\s*(?:and|or)\s*|,|;)\s*$")


def split_items(text: str) -> list[tuple[str, str]]:
    r"""Split a normalised answer at its top-level separators into ``(separator, item)`` pairs.

    Separators (outside any ``()``, ``[]``, ``{}``, ``\{\}`` group): ``,`` and ``;`` (kind ``","``), the words
    "and"/"or" bare or in ``\text{}`` (kinds ``"and"``/``"or"``), ``\land``/``\wedge`` and ``\lor``/``\vee``,
    ``\quad``/``\qquad`` and the line break ``\\``. The first item's separator is ``""``. Empty items are dropped.

    Example:
        >>> split_items(r"(3,4), (4,3)")
        [('', '(3,4)'), (',', '(4,3)')]
        >>> split_items(r"x=1 \text{ or } x=2")
        [('', 'x=1'), ('or', 'x=2')]
    """
    items: list[tuple[str, str]] = []
    depth = 0
    start = 0
    pending = ""
    index = 0
    length = len(text)

    def cut(end: int, resume: int, kind: str) -> None:
        nonlocal start, pending
        piece = text[start:end].strip()
        if piece:
            items.append((pending, piece))
            pending = kind
        elif items and kind in ("and", "or"):  # ", and" / ", or": the word decides
            pending = kind
        start = resume

    while index < length:
        char = text[index]
        if char == "\\":
            if index + 1 < length and text[index + 1] in "{}":
                depth += 1 if text[index + 1] == "{" else -1
                index += 2
                continue
            if index + 1 < length and text[index + 1] == "\\":
                if depth == 0:
                    cut(index, index + 2, ",")
                index += 2
                continue
            name_match = _COMMAND_NAME.match(text, index + 1)
            if name_match is None:
                index += 2
                continue
            name = name_match.group()
            after = index + 1 + len(name)
            if name in ("begin", "end"):  # an environment (a matrix, cases) is one group
                depth = depth + 1 if name == "begin" else max(0, depth - 1)
            elif depth == 0 and name in _COMMAND_SEPARATORS:
                kind = _COMMAND_SEPARATORS[name]
                if kind:
                    cut(index, after, kind)
                    index = after
                    continue
                # \text{ and } / \text{or} / \text{,}: a separator only when the argument is just that
                brace = after
                while brace < length and text[brace] == " ":
                    brace += 1
                if brace < length and text[brace] == "{":
                    end = _matching_brace(text, brace)
                    if end is not None:
                        separator = _TEXT_SEPARATOR.match(text[brace + 1 : end])
                        if separator is not None:
                            found = separator.group(1).strip().lstrip(",").strip()
                            cut(index, end + 1, found if found in ("and", "or") else ",")
                            index = end + 1
                            continue
                        index = end + 1
                        continue
            index = after
            continue
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
        elif depth == 0:
            if char in ",;":
                cut(index, index + 1, ",")
            elif char in "ao" and (index == 0 or not text[index - 1].isalpha()):
                word = "and" if text.startswith("and", index) else "or" if text.startswith("or", index) else ""
                after = index + len(word)
                if word and (after >= length or not text[after].isalpha()):
                    cut(index, after, _WORD_SEPARATORS[word])
                    index = after
                    continue
        index += 1
    cut(length, length, "")
    return _split_text_items(items)


_TEXT_GROUP = re.compile(r"\\(?:text|textbf|textit|mathrm|mbox)\s*\{")
_TEXT_WORD_SEPARATOR = re.compile(r"(?<![A-Za-z])(?:and|or)(?![A-Za-z])|[,;]")


def _split_text_items(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    r"""Split an item that is one ``\text{...}`` group holding separators into one ``\text{}`` item per part.

    ``\text{yes and no}`` is the items ``\text{yes}``, ``\text{no}`` (joined by "and"); ``\text{(A) or (B)}`` is
    ``\text{(A)}``, ``\text{(B)}``. Only an item that is the group alone is split (``5 \text{ apples}`` stays one
    item), at the same separators as math (``,``, ``;``, "and", "or", outside brackets).
    """
    result: list[tuple[str, str]] = []
    for separator, item in items:
        opening = _TEXT_GROUP.match(item)
        inner = None
        if opening is not None and _matching_brace(item, opening.end() - 1) == len(item) - 1:
            inner = item[opening.end() : -1]
        parts = split_items(inner) if inner is not None and _TEXT_WORD_SEPARATOR.search(inner) else []
        if len(parts) < 2:
            result.append((separator, item))
            continue
        result.append((separator, f"\\text{{{parts[0][1]}}}"))
        result.extend((kind, f"\\text{{{part}}}") for kind, part in parts[1:])
    return result


# -------------------------------------------------------------------------------------------------- structures


@dataclass(frozen=True)
class Value:
    r"""One answer value.

    Attributes:
        expr: The sympy object math-verify parsed, with every decimal literal replaced by its exact rational.
        text: The item's normalised text ("" for values taken out of a parsed set).
        number: The exact value when the item is a plain numeral (integer, decimal, e-notation), else ``None``.
        decimal: The item contains a decimal literal (so it may be a rounded value).
        unit: ``"percent"`` (the item ended in ``\%``, "percent"...) or ``"degree"`` (``^\circ``, ``°``,
            ``\degree``); ``expr``/``number`` then hold the number before the sign. ``None`` otherwise.
    """

    expr: Any
    text: str = ""
    number: Fraction | None = None
    decimal: bool = False
    unit: str | None = None


@dataclass(frozen=True)
class Record:
    """Assignments to distinct names, e.g. ``x = 2, y = 3``; ``names`` keep the written order."""

    names: tuple[str, ...]
    values: tuple[Value, ...]


Solution = Value | Record


@dataclass(frozen=True)
class Answer:
    """A parsed gold or predicted answer.

    Attributes:
        solutions: The structural reading (empty when an item could not be parsed): an order-insensitive list.
        whole: math-verify's reading of the whole text as one expression (exact), used when ``solutions`` is
            empty on either side.
    """

    solutions: tuple[Solution, ...]
    whole: tuple[Any, ...] = ()

    @property
    def parsed(self) -> bool:
        return bool(self.solutions or self.whole)


# ------------------------------------------------------------------------------------------------------ parsing

_NUMERAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_E_NOTATION = re.compile(r"(?<![A-Za-z0-9_.\\])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d{1,6})(?![A-Za-z0-9_.])")
_DECIMAL_LITERAL = re.compile(r"(?<![\d.])\d*\.\d")
_UNIT_SUFFIXES = {
    "percent": re.compile(
        r"^(?P<body>.*?)\s*(?:\\%|%|\\text\{\s*\\?%\s*\}|\\(?:text|mbox|mathrm)\{\s*(?:percent|pct)\s*\}"
        r"|\bpercent|\bpct)$",
        re.DOTALL,
    ),
    "degree": re.compile(r"^(?P<body>.*?)\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\degree)$", re.DOTALL),
}
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_DEGREES = re.compile(r"(\d+(?:\.\d+)?)\s*\^\s*(?:\{\s*\\circ\s*\}|\\circ)")
_UNIT_SCALES = {"percent": sympy.Rational(1, 100), "degree": sympy.pi / 180}
_SET_BUILDER = re.compile(
    r"^\\\{\s*(?P<var>[A-Za-z](?:_\{?\w+\}?)?)\s*(?:\\in\s*(?P<domain>\\mathbb\s*\{?[RZNQ]\}?|\\mathbf\s*\{?[RZNQ]\}?))?"
    r"\s*(?:\\mid|\\vert|\||:)\s*(?P<cond>.+?)\s*\\\}$",
    re.DOTALL,
)
_DOMAIN_IN_CONDITION = re.compile(
    r"^(?P<var>[A-Za-z](?:_\{?\w+\}?)?)\s*\\in\s*\\math(?:bb|bf)\s*\{?(?P<set>[RZNQ])\}?$"
)
_DOMAINS = {"R": sympy.S.Reals, "Z": sympy.S.Integers, "N": sympy.S.Naturals, "Q": sympy.S.Rationals}
_NAME = re.compile(r"^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?'?$")
_TUPLE_ASSIGNMENT = re.compile(
    r"^\(\s*(?P<names>[A-Za-z](?:_\{?\w{1,3}\}?)?(?:\s*,\s*[A-Za-z](?:_\{?\w{1,3}\}?)?)+)\s*\)\s*=\s*(?P<values>.+)$",
    re.DOTALL,
)
_INDEXED_NAME = re.compile(r"^([A-Za-z])_\{?([0-9]+)\}?$")


def _mv_parse(text: str) -> list[Any]:
    """math-verify's parse of one item (wrapped in a box), sympy objects only, decimals made exact."""
    found = parse("\\boxed{" + text + "}", _LATEX_CONFIG, fallback_mode="no_fallback", parsing_timeout=None)
    return [exact(item) for item in found if not isinstance(item, str)]


def exact(expr: Any) -> Any:
    """``expr`` with every sympy ``Float`` replaced by the rational its decimal digits denote (``0.1`` -> 1/10)."""
    if isinstance(expr, sympy.MatrixBase):
        return expr.applyfunc(exact)
    if not isinstance(expr, sympy.Basic):
        return expr
    mapping: dict[Any, Any] = {
        # math-verify reads "i" as a non-real symbol when the text looks complex: it is the imaginary unit
        symbol: sympy.I
        for symbol in expr.free_symbols
        if isinstance(symbol, sympy.Symbol) and symbol.name == "i" and symbol.is_real is False
    }
    floats = expr.atoms(sympy.Float)
    if not floats and not mapping:
        return expr
    for value in floats:
        digits = mpmath.libmp.to_str(value._mpf_, mpmath.libmp.prec_to_dps(value._prec))
        if digits in ("+inf", "-inf", "nan"):
            continue
        mapping[value] = sympy.Rational(digits)
    return expr.xreplace(mapping)


def _e_notation(text: str) -> str:
    def rewrite(match: re.Match[str]) -> str:
        exponent = int(match.group(2))
        if abs(exponent) > MAX_EXPONENT:
            return match.group()
        value = Fraction(match.group(1)) * Fraction(10) ** exponent
        if value.denominator == 1:
            return str(value.numerator)
        return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"

    return _E_NOTATION.sub(rewrite, text)


def _numeral(text: str) -> Fraction | None:
    compact = re.sub(r"^([+-])\s+", r"\1", text).replace("{,}", "")
    if _COMMA_THOUSANDS.match(compact):
        compact = compact.replace(",", "")
    if not _NUMERAL.match(compact):
        return None
    exponent = re.search(r"[eE]([+-]?\d+)", compact)
    if exponent is not None and abs(int(exponent.group(1))) > MAX_EXPONENT:
        return None
    return Fraction(compact)


def parse_answer(text: str) -> Answer | None:
    r"""Parse a gold or predicted answer text; ``None`` when neither reading parses.

    Example:
        >>> answer = parse_answer(r"(3,4), (4,3)")
        >>> len(answer.solutions)
        2
        >>> parse_answer(r"\frac{") is None
        True
    """
    return _parse_answer(text, 0)


def _parse_answer(text: str, depth: int) -> Answer | None:
    contents = box_contents(text)
    if contents is not None and depth < _MAX_DEPTH:
        if not contents:
            return None
        text = ", ".join(contents)
    text = normalize_text(text)
    if not text:
        return None
    named = _TUPLE_ASSIGNMENT.match(text)
    if named is not None and depth < _MAX_DEPTH:  # (x, y) = (1, 2), (2, 1): records of those names
        names = tuple(name.strip() for name in named.group("names").split(","))
        inner = _parse_answer(named.group("values"), depth + 1)
        if inner is not None and inner.solutions:
            return Answer(tuple(_named(solution, names) for solution in inner.solutions), inner.whole)
    pieces = split_items(text)
    solutions: list[Solution] | None = None
    if 0 < len(pieces) <= MAX_ITEMS:
        solutions = _solutions(pieces, depth)
    whole: tuple[Any, ...] = ()
    if solutions is not None and len(pieces) == 1 and len(solutions) == 1 and isinstance(solutions[0], Value):
        whole = (solutions[0].expr,)  # one item: the whole text is that item
    else:
        try:
            whole = tuple(_mv_parse(_e_notation(text)))
        except Exception as exc:  # math-verify catches its own errors; this is our exact() step
            logger.debug("whole-answer parse failed: %s", exc)
    if not solutions and not whole:
        return None
    return Answer(tuple(solutions or ()), whole)


def _solutions(pieces: Sequence[tuple[str, str]], depth: int) -> list[Solution] | None:
    parsed: list[tuple[str, list[Solution]]] = []
    for separator, item in pieces:
        found = _parse_item(item, depth)
        if found is None:
            return None
        parsed.append((separator, found))
    merged = _merge_conditions(parsed)
    if merged is not None:
        return [merged]
    solutions: list[Solution] = []
    last_mergeable = False
    for separator, found in parsed:
        single = found[0] if len(found) == 1 and isinstance(found[0], Record) else None
        last = solutions[-1] if solutions else None
        if (
            single is not None
            and last_mergeable
            and isinstance(last, Record)
            and separator != "or"
            and not set(single.names) & set(last.names)
        ):
            solutions[-1] = Record(last.names + single.names, last.values + single.values)
        else:
            solutions.extend(found)
        last_mergeable = single is not None
    return [piece for solution in solutions for piece in _unpack_indexed(solution)]


def _named(solution: Solution, names: tuple[str, ...]) -> Solution:
    """A tuple value under ``(x, y) = ...`` becomes the record ``x = ..., y = ...``."""
    if isinstance(solution, Value):
        items = _tuple_items(solution.expr)
        if items is not None and len(items) == len(names):
            return Record(names, tuple(Value(item, "", _rational(item), solution.decimal) for item in items))
    return solution


def _unpack_indexed(solution: Solution) -> list[Solution]:
    """``x_1 = a, x_2 = b`` lists the values of one unknown: read it as the solutions ``a`` and ``b``."""
    if isinstance(solution, Record) and len(solution.names) >= 2:
        bases = {match.group(1) if (match := _INDEXED_NAME.match(name)) else None for name in solution.names}
        if len(bases) == 1 and None not in bases:
            return list(solution.values)
    return [solution]


def _merge_conditions(parsed: Sequence[tuple[str, list[Solution]]]) -> Value | None:
    """``x < 1 or x > 2`` (or ``... and ...``): one-variable conditions joined by or/and become one set."""
    if len(parsed) < 2:
        return None
    kinds = {separator for separator, _ in parsed[1:]}
    if kinds not in ({"or"}, {"and"}):
        return None
    sets = []
    for _, found in parsed:
        if len(found) != 1 or not isinstance(found[0], Value):
            return None
        condition = found[0].expr
        if not _is_condition(condition) or isinstance(condition, sympy.Eq):
            return None
        converted = _condition_set(condition)
        if converted is None:
            return None
        sets.append(converted)
    symbols = {frozenset(found[0].expr.free_symbols) for _, found in parsed if isinstance(found[0], Value)}
    if len(symbols) != 1:
        return None
    combined = sympy.Union(*sets) if kinds == {"or"} else sympy.Intersection(*sets)
    return Value(combined)


def _parse_item(item: str, depth: int) -> list[Solution] | None:
    """The solutions one item states, or ``None`` when it cannot be parsed (whatever sympy raised)."""
    try:
        return _parse_item_unguarded(item, depth)
    except Exception as exc:  # MemoryError on huge powers, TypeError/ValueError from sympy on odd input
        logger.debug("item parse failed: %s: %s", type(exc).__name__, exc)
        return None


def _parse_item_unguarded(item: str, depth: int) -> list[Solution] | None:
    if "circ" in item and _TRIG.search(item):  # \sin 30^\circ: degrees inside a function are radians there
        item = _DEGREES.sub(lambda m: f"\\frac{{{m.group(1)}\\pi}}{{180}}", item)
    if ("\\boxed" in item or "\\fbox" in item) and depth < _MAX_DEPTH:
        inner = _parse_answer(item, depth + 1)
        return list(inner.solutions) if inner is not None and inner.solutions else None
    for unit, pattern in _UNIT_SUFFIXES.items():
        suffix = pattern.match(item) if ("%" in item or "p" in item or "circ" in item or "degree" in item) else None
        if suffix is not None and suffix.group("body").strip():
            values = _parse_item(suffix.group("body").strip(), depth)
            if values is None or len(values) != 1:
                return None
            found = values[0]
            if isinstance(found, Record) and len(found.names) == 1:  # A = 60^\circ: the unit is the value's
                value = found.values[0]
                with_unit = Value(value.expr, "", value.number, value.decimal, unit=unit)
                return [Record(found.names, (with_unit,))]
            if not isinstance(found, Value) or found.unit:
                return None
            return [Value(found.expr, item, found.number, found.decimal, unit=unit)]
    builder = _SET_BUILDER.match(item)
    if builder is not None and depth < _MAX_DEPTH:
        converted = _set_builder(builder)
        return None if converted is None else _to_solutions(converted, item, None, False)
    number = _numeral(item)
    decimal = bool(_DECIMAL_LITERAL.search(item)) or (number is not None and "e" in item.lower())
    if number is not None:
        return [Value(sympy.Rational(number.numerator, number.denominator), item, number, decimal)]
    exprs = _mv_parse(_e_notation(item))
    if not exprs:
        return None
    return _to_solutions(exprs[0], item, None, decimal)


def _to_solutions(expr: Any, text: str, number: Fraction | None, decimal: bool) -> list[Solution]:
    assignment = _assignment(expr)
    if assignment is not None:
        name, value = assignment
        if _is_finite_set(value):  # x \in \{1, 2\}, x = 1 \pm \sqrt{2}
            return [Record((name,), (Value(element, "", None, decimal),)) for element in _elements(value)]
        return [Record((name,), (Value(value, "", None, decimal),))]
    if _is_finite_set(expr):  # \{1, 2\} lists two answers
        return [Value(element, "", _rational(element), decimal) for element in _elements(expr)]
    return [Value(expr, text, number, decimal)]


def _rational(expr: Any) -> Fraction | None:
    if isinstance(expr, sympy.Rational):
        return Fraction(int(expr.p), int(expr.q))
    return None


def _is_finite_set(expr: Any) -> bool:
    """A set listed element by element: ``\\{1, 2\\}``, or a finite ``Range`` from a set-builder over the integers."""
    if isinstance(expr, sympy.FiniteSet):
        return True
    return isinstance(expr, sympy.Range) and expr.is_finite_set is True and 0 < expr.size <= MAX_ITEMS


def _elements(expr: Any) -> list[Any]:
    if isinstance(expr, sympy.Range):
        return list(expr)
    unsorted = getattr(expr, "_unsorted_args", None)
    return list(unsorted) if unsorted is not None else list(expr.args)


def _assignment(expr: Any) -> tuple[str, Any] | None:
    """``(name, value)`` for ``name = value`` (also ``x = y = 3`` -> x, 3); ``None`` otherwise."""
    first = last = expr
    if isinstance(expr, And):
        args = getattr(expr, "_unsorted_args", expr.args)
        if not args or not all(isinstance(arg, sympy.Eq) for arg in args):
            return None
        first, last = args[0], args[-1]
    if not isinstance(first, sympy.Eq) or not isinstance(last, sympy.Eq):
        return None
    lhs = first.lhs
    if not isinstance(lhs, sympy.Symbol) or not _NAME.match(lhs.name):
        return None
    return lhs.name, last.rhs


def _set_builder(match: re.Match[str]) -> Any:
    r"""``\{x \mid 1 < x < 2\}`` -> the set of reals (or the given domain) satisfying the condition."""
    variable = match.group("var")
    domain: Any = sympy.S.Reals
    if match.group("domain"):
        domain = _DOMAINS[re.sub(r"[^RZNQ]", "", match.group("domain").split("{")[-1])[-1]]
    pieces = split_items(match.group("cond"))
    if not pieces:
        return None
    kinds = {separator for separator, _ in pieces[1:]}
    if len(kinds) > 1:
        return None
    sets = []
    for _, part in pieces:
        in_domain = _DOMAIN_IN_CONDITION.match(part)
        if in_domain is not None and in_domain.group("var") == variable:
            domain = _DOMAINS[in_domain.group("set")]
            continue
        exprs = _mv_parse(_e_notation(part))
        if not exprs or not _is_condition(exprs[0]):
            return None
        converted = _condition_set(exprs[0])
        if converted is None:
            return None
        sets.append(converted)
    if not sets:
        return domain
    combined = sympy.Union(*sets) if kinds == {"or"} else sympy.Intersection(*sets)
    return sympy.Intersection(combined, domain)


def _is_condition(expr: Any) -> bool:
    if isinstance(expr, Relational):
        return True
    if isinstance(expr, And | Or):
        return all(_is_condition(arg) for arg in expr.args)
    return False


def _condition_set(expr: Any) -> Any:
    """The solution set of a condition in one variable (``x > 2`` -> ``(2, oo)``), else ``None``."""
    if len(expr.free_symbols) != 1:
        return None
    try:
        return expr.as_set()
    except Exception as exc:  # sympy cannot solve it (not univariate, not polynomial...)
        logger.debug("as_set failed: %s", exc)
        return None


def answer_from_expressions(exprs: Iterable[Any]) -> Answer | None:
    """An :class:`Answer` from math-verify's own extraction of a response (the fallback extraction modes)."""
    solutions: list[Solution] = []
    whole = []
    for item in exprs:
        if isinstance(item, str):
            continue
        try:
            expr = exact(item)
        except Exception as exc:  # as in _parse_item
            logger.debug("exact() failed: %s: %s", type(exc).__name__, exc)
            continue
        whole.append(expr)
        if not solutions:
            decimal = isinstance(item, sympy.Basic) and bool(item.atoms(sympy.Float))
            solutions = _to_solutions(expr, "", _rational(expr), decimal)
    if not whole:
        return None
    return Answer(tuple(solutions), tuple(whole))


# --------------------------------------------------------------------------------------------------- comparison


def answers_match(gold: Answer, pred: Answer) -> bool:
    r"""Whether ``pred`` states the same answer(s) as ``gold`` (the matching rule of ``docs/reward.md``).

    Example:
        >>> answers_match(parse_answer("(3,4),(4,3)"), parse_answer(r"\boxed{(4,3)} and \boxed{(3,4)}"))
        True
        >>> answers_match(parse_answer("x = 2, y = 3"), parse_answer("(3, 2)"))
        False
    """
    if gold.solutions and pred.solutions:
        return solutions_match(gold.solutions, pred.solutions)
    return any(_safe(expr_equal, g, p) for g in gold.whole for p in pred.whole)


def solutions_match(gold: Sequence[Solution], pred: Sequence[Solution]) -> bool:
    """Order-insensitive: every gold solution equals a predicted one and every predicted one a gold one."""
    if len(gold) == 1 and len(pred) == 1:
        return _safe(solutions_equal, gold[0], pred[0])
    # One record of several unknowns, or one tuple, against the same number of bare values: the values in the
    # record's / tuple's order ("x = 2, y = 3" or "(2, 3)" against "2, 3").
    for one, many in ((gold, pred), (pred, gold)):
        single = one[0] if len(one) == 1 else None
        values = [item for item in many if isinstance(item, Value)]
        if len(values) != len(many) or len(many) < 2:
            continue
        items = _tuple_items(single.expr) if isinstance(single, Value) and not single.unit else None
        if isinstance(single, Record) and len(single.names) == len(many):
            ordered = list(single.values)
        elif isinstance(single, Value) and items is not None and len(items) == len(many):
            ordered = [Value(item, "", _rational(item), single.decimal) for item in items]
        else:
            continue
        pairs = zip(ordered, values, strict=True) if one is gold else zip(values, ordered, strict=True)
        return all(_safe(values_equal, a, b) for a, b in pairs)
    cache: dict[tuple[int, int], bool] = {}

    def equal(i: int, j: int) -> bool:
        if (i, j) not in cache:
            cache[(i, j)] = _safe(solutions_equal, gold[i], pred[j])
        return cache[(i, j)]

    def covered(rows: int, cols: int, test: Callable[[int, int], bool]) -> bool:
        for i in range(rows):
            order = [i] + [j for j in range(cols) if j != i] if i < cols else range(cols)
            if not any(test(i, j) for j in order):
                return False
        return True

    return covered(len(gold), len(pred), equal) and covered(len(pred), len(gold), lambda j, i: equal(i, j))


def _safe(function: Callable[..., bool], *args: Any) -> bool:
    try:
        return bool(function(*args))
    except Exception as exc:  # sympy raises many types (MemoryError too) on odd input: "not equal"
        logger.debug("comparison failed: %s: %s", type(exc).__name__, exc)
        return False


def solutions_equal(gold: Solution, pred: Solution) -> bool:
    if isinstance(gold, Record) and isinstance(pred, Record):
        if len(gold.names) == 1 and len(pred.names) == 1 and gold.names != pred.names:
            return False
        if set(gold.names) != set(pred.names):
            return False
        values = dict(zip(pred.names, pred.values, strict=True))
        return all(values_equal(value, values[name]) for name, value in zip(gold.names, gold.values, strict=True))
    if isinstance(gold, Record) or isinstance(pred, Record):
        record, value = (gold, pred) if isinstance(gold, Record) else (pred, gold)
        assert isinstance(record, Record) and isinstance(value, Value)
        if len(record.names) == 1:
            assigned = record.values[0]
            if _is_condition(value.expr) and not isinstance(assigned.expr, sympy.Set):
                # y = 2x + 1 against 2x - y + 1 = 0: compare the equations
                assigned = Value(sympy.Eq(sympy.Symbol(record.names[0], real=True), assigned.expr))
            # x \in (1, 2) against 1 < x < 2 is the set rule of expr_equal
            return values_equal(assigned, value) if record is gold else values_equal(value, assigned)
        items = _tuple_items(value.expr)
        if items is None or len(items) != len(record.names):
            return False
        pairs = zip(record.values, items, strict=True)
        return all(expr_equal(a.expr, b) if record is gold else expr_equal(b, a.expr) for a, b in pairs)
    assert isinstance(gold, Value) and isinstance(pred, Value)
    return values_equal(gold, pred)


def _tuple_items(expr: Any) -> list[Any] | None:
    if isinstance(expr, sympy.Tuple):
        return list(expr.args)
    if isinstance(expr, sympy.Interval) and expr.left_open and expr.right_open:
        return [expr.start, expr.end]  # "(2, 3)" is parsed as an open interval; as a pair it is the same text
    return None


def values_equal(gold: Value, pred: Value) -> bool:
    """Two values: the unit rule (percent, degree), then the numeral rule, then :func:`expr_equal`.

    Unit rule: ``p%`` denotes ``p/100`` and ``d°`` denotes ``d*pi/180``; a value with a unit equals a value
    without one when that value is the denoted number or the bare number (the sign dropped like a unit:
    ``50%`` = ``0.5`` = ``50``, ``30°`` = ``pi/6`` = ``30``). Two values with the same unit compare their
    numbers; a percent never equals a degree.
    """
    if gold.unit and pred.unit:
        return gold.unit == pred.unit and values_equal(_without_unit(gold), _without_unit(pred))
    if gold.unit or pred.unit:
        with_unit, other = (gold, pred) if gold.unit else (pred, gold)
        bare = _without_unit(with_unit)
        candidates = (_scaled(bare, _UNIT_SCALES[str(with_unit.unit)]), bare)
        return any(values_equal(c, other) if with_unit is gold else values_equal(other, c) for c in candidates)
    if gold.number is not None and pred.number is not None:
        return numerals_equal(gold.number, pred.number, approximate=gold.decimal or pred.decimal)
    return expr_equal(gold.expr, pred.expr, decimal=gold.decimal or pred.decimal)


def _without_unit(value: Value) -> Value:
    return Value(value.expr, value.text, value.number, value.decimal)


def _scaled(value: Value, factor: Any) -> Value:
    number = None
    if value.number is not None and isinstance(factor, sympy.Rational):
        number = value.number * Fraction(int(factor.p), int(factor.q))
    return Value(value.expr * factor, "", number, value.decimal)


def numerals_equal(a: Fraction, b: Fraction, *, approximate: bool) -> bool:
    """Plain numerals: integers exactly; when either is written as a decimal, within the documented tolerance
    ``|a - b| <= max(REL_TOLERANCE * max(|a|, |b|), ABS_TOLERANCE)`` (1e-12 relative, 1e-15 absolute): enough
    for binary floating-point noise (``0.30000000000000004``), far below any rounding a person writes.

    Example:
        >>> numerals_equal(Fraction("0.30000000000000004"), Fraction("0.3"), approximate=True)
        True
        >>> numerals_equal(Fraction("0.333"), Fraction("0.3333"), approximate=True)
        False
    """
    if a == b:
        return True
    if not approximate:
        return False
    return abs(a - b) <= max(REL_TOLERANCE * max(abs(a), abs(b)), ABS_TOLERANCE)


def expr_equal(gold: Any, pred: Any, *, decimal: bool = True) -> bool:
    """Two parsed expressions: exact for numbers and constants, sets from conditions, else math-verify."""
    if gold == pred:
        return True
    if isinstance(gold, sympy.Tuple) and isinstance(pred, sympy.Tuple):
        return len(gold) == len(pred) and all(expr_equal(a, b) for a, b in zip(gold.args, pred.args, strict=True))
    if _is_constant(gold) and _is_constant(pred):
        return constants_equal(gold, pred, decimal=decimal)
    gold_set = isinstance(gold, sympy.Set)
    pred_set = isinstance(pred, sympy.Set)
    if gold_set != pred_set:
        condition, other = (pred, gold) if gold_set else (gold, pred)
        if _is_condition(condition) and not isinstance(condition, sympy.Eq):
            converted = _condition_set(condition)
            if converted is not None:
                return sets_equal(converted, other)
    elif _is_condition(gold) and _is_condition(pred) and not isinstance(gold, sympy.Eq):
        if gold.free_symbols == pred.free_symbols and len(gold.free_symbols) == 1:
            gold_solutions, pred_solutions = _condition_set(gold), _condition_set(pred)
            if gold_solutions is not None and pred_solutions is not None:
                return sets_equal(gold_solutions, pred_solutions)
    if gold_set and pred_set and not (isinstance(gold, sympy.FiniteSet) and isinstance(pred, sympy.FiniteSet)):
        if sets_equal(gold, pred):
            return True
    return bool(verify(gold, pred, timeout_seconds=None))


def sets_equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, sympy.Interval) and isinstance(b, sympy.Interval):
        return (
            a.left_open == b.left_open
            and a.right_open == b.right_open
            and expr_equal(a.start, b.start)
            and expr_equal(a.end, b.end)
        )
    try:
        return bool(sympy.Complement(a, b).is_empty and sympy.Complement(b, a).is_empty)
    except Exception as exc:
        logger.debug("set comparison failed: %s", exc)
        return False


def _is_constant(expr: Any) -> bool:
    return isinstance(expr, sympy.Expr) and not isinstance(expr, sympy.Set) and not expr.free_symbols


_PRECISION = 60


def constants_equal(gold: Any, pred: Any, *, decimal: bool = True) -> bool:
    """Two expressions without variables, compared exactly.

    A numerical evaluation (60 digits) rejects values that differ; equality then needs a symbolic proof
    (``simplify(a - b) == 0`` or sympy's ``equals``). So ``3.14`` (= 157/50) never equals ``pi`` and 0.333
    never equals 1/3. Only when neither side contains a decimal literal and sympy cannot decide, values that
    agree to 40 significant digits count as equal (closed forms sympy fails to simplify).

    Example:
        >>> constants_equal(sympy.pi, sympy.Rational(314159, 100000))
        False
        >>> constants_equal(sympy.sqrt(8), 2 * sympy.sqrt(2))
        True
    """
    if gold.has(sympy.nan, sympy.zoo) or pred.has(sympy.nan, sympy.zoo):
        return False
    if gold.is_infinite or pred.is_infinite:
        return bool(gold == pred)
    close = False
    a = sympy.N(gold, _PRECISION)
    b = sympy.N(pred, _PRECISION)
    if a.is_comparable is not False and b.is_number and a.is_number:
        difference = abs(a - b)
        scale = sympy.Max(1, abs(a), abs(b))
        if difference.is_comparable and scale.is_comparable:
            if bool(difference > sympy.Float("1e-30", _PRECISION) * scale):
                return False
            close = bool(difference <= sympy.Float("1e-40", _PRECISION) * scale)
    difference_expr = gold - pred
    if difference_expr == 0 or sympy.simplify(difference_expr) == 0:
        return True
    if difference_expr.equals(0) is True:
        return True
    return bool(close) and not decimal


def multipart_match(gold: Answer, pred: Answer, recent_boxes: Sequence[str]) -> bool:
    r"""The multi-part rule: a gold with ``k >= 2`` solutions against a response whose final answer group holds
    fewer than ``k`` (its parts were boxed apart, ``(1) ... \boxed{3} ... (2) ... \boxed{5}``): the response's
    last ``k`` boxes, read together, are the answer.

    Example:
        >>> multipart_match(parse_answer("3, 5"), parse_answer("5"), ["3", "5"])
        True
        >>> multipart_match(parse_answer("5"), parse_answer("5"), ["3", "5"])  # one gold answer: no rule
        False
    """
    count = len(gold.solutions)
    if count < 2 or len(recent_boxes) < count or len(pred.solutions) >= count:
        return False
    alternative = parse_answer(", ".join(recent_boxes[-count:]))
    return alternative is not None and answers_match(gold, alternative)
