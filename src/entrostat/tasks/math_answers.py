"""Math answers checked with math-verify (pip ``math-verify``): extraction, normalisation, scoring.

Gold answers come as plain values (``42``, ``0.5``, ``"\\frac{1}{2}"``), as text with a
``\\boxed{...}`` (the last one counts), or GSM8K-style with ``#### 42`` at the end.
A completion's answer is its last ``\\boxed{...}``, else the text after its last
``####``, else its last number. Both sides are normalised before parsing, so
that ``5 cm``, ``$5``, ``\\$5``, ``5 dollars``, ``\\text{5 cm}`` all read 5, thousands
separators go (``1,000`` is 1000), and a Unicode minus is a minus. The two
answers are then parsed with ``math_verify.parse`` (inside ``\\boxed{}``, LaTeX
first, plain expressions as fallback) and compared with ``math_verify.verify``
(numeric tolerance, symbolic equality, sets, intervals): ``1/2 = 0.5 = \\frac{1}{2}``.

Timeouts: math-verify bounds parsing and comparison with ``signal.alarm``, which
works only in the main thread (anywhere else it raises). We pass the timeout in
the main thread and none elsewhere, so scoring from a worker thread works but is
unbounded there; answers longer than ``MAX_ANSWER_CHARS`` score 0 to keep parses
small. Nothing here raises on garbage text: an unparseable answer scores 0.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from typing import Any

MAX_ANSWER_CHARS = 200
TIMEOUT_S = 5  # math-verify's own default

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_THOUSANDS = re.compile(r"(?<![\d.])(-?\d{1,3}(?:,\d{3})+)(?![\d,])")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox|mathbf)\s*\{([^{}]*)\}")
_PLAIN_NUMBER_WITH_UNITS = re.compile(
    r"^(?:\\?\$|€|£|¥)?\s*(-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?)\s*(?:\\%|%)?\s*([A-Za-z][A-Za-z .]*)?$"
)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, None if there is none."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start:i]
    return None


def after_hashes(text: str) -> str | None:
    """The rest of the line after the last ``####`` (GSM8K), None if there is none or it is empty."""
    if "####" not in text:
        return None
    tail = text.rsplit("####", 1)[1].strip().split("\n", 1)[0].strip()
    return tail or None


def last_number(text: str) -> str | None:
    """The last number in ``text`` (with sign, decimals, thousands separators or a /denominator)."""
    found = _NUMBER.findall(text.replace("\u2212", "-"))
    return found[-1] if found else None


def completion_answer(completion: str) -> str | None:
    """The answer a completion gives: last ``\\boxed{}``, else after the last ``####``, else its last number."""
    if not isinstance(completion, str):
        return None
    for extract in (last_boxed, after_hashes, last_number):
        found = extract(completion)
        if found is not None and found.strip():
            return found.strip()
    return None


def gold_answer(raw: Any) -> str:
    """A gold answer as text: a plain value, the last ``\\boxed{}`` in it, or what follows ``####``."""
    text = str(raw).strip()
    for extract in (after_hashes, last_boxed):
        found = extract(text)
        if found is not None and found.strip():
            return found.strip()
    return text


def normalize(answer: str) -> str:
    """Strip what math-verify would misread: ``$...$`` wrappers, ``\\text{}``, currency and units after a
    plain number, thousands separators, Unicode minus, LaTeX spacing."""
    s = answer.strip().replace("\u2212", "-")
    for a, b in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b):
            s = s[len(a):-len(b)].strip()
    if len(s) > 1 and s.startswith("$") and s.endswith("$"):
        s = s.strip("$").strip()
    for _ in range(3):  # nested wrappers
        s = _TEXT_WRAP.sub(r"\1", s)
    s = re.sub(r"\\[,!;: ]|~", " ", s).strip()
    s = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), s)
    m = _PLAIN_NUMBER_WITH_UNITS.match(s)
    if m:  # "5 cm", "$5", "5 dollars", "50%": the number (a percent sign stays)
        pct = "\\%" if "%" in s else ""
        return m.group(1).rstrip(".") + pct
    return s.rstrip(".").strip()


def require_math_verify() -> None:
    """ImportError saying what to install when math-verify is missing (the core installs without it)."""
    try:
        import math_verify  # noqa: F401
    except ImportError as exc:
        raise ImportError("math answers need the math-verify package: pip install 'entrostat[real]' "
                          "(or pip install math-verify)") from exc


def _timeout() -> int | None:
    """math-verify's signal-based timeout works only in the main thread; elsewhere run without one."""
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=65536)
def parse_answer(answer: str) -> tuple:
    """math-verify's parse of a normalised answer: LaTeX inside ``\\boxed{}``, else a plain expression."""
    import math_verify
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every timeout and disabled timeout
    t = _timeout()
    parsed = math_verify.parse("\\boxed{" + answer + "}", [LatexExtractionConfig(boxed_match_priority=0)],
                               parsing_timeout=t)
    if not parsed:
        parsed = math_verify.parse(answer, [ExprExtractionConfig()], parsing_timeout=t)
    return tuple(parsed)


def answers_match(gold: str, predicted: str) -> bool:
    """math-verify's verdict on two answer strings (normalised here); False on anything unparseable."""
    if not gold or not predicted or len(predicted) > MAX_ANSWER_CHARS:
        return False
    import math_verify

    try:
        g, p = parse_answer(normalize(gold)), parse_answer(normalize(predicted))
        if not g or not p:
            return False
        return bool(math_verify.verify(list(g), list(p), timeout_seconds=_timeout()))
    except Exception:  # noqa: BLE001 - sympy can raise anything on odd input; that answer is wrong
        return False


def math_score(gold: Any, completion: str) -> float:
    """1.0 if the completion's answer equals the gold answer by math-verify, else 0.0; never raises."""
    predicted = completion_answer(completion)
    return float(predicted is not None and answers_match(gold_answer(gold), predicted))


def math_canonical(completion: str) -> str | None:
    """A normal form of the completion's answer for counting distinct answers (0.5 and 1/2 both '1/2'),
    None without an answer."""
    predicted = completion_answer(completion)
    if predicted is None or len(predicted) > MAX_ANSWER_CHARS:
        return None
    norm = normalize(predicted)
    try:
        parsed = parse_answer(norm)
        import sympy

        if parsed and isinstance(parsed[0], sympy.Basic):
            x = parsed[0]
            return str(sympy.nsimplify(x, rational=True)) if isinstance(x, sympy.Float) else str(x)
    except Exception:  # noqa: BLE001
        pass
    return " ".join(norm.split()) or None


def has_boxed(completion: str) -> bool:
    """The expected format of math answers: a non-empty ``\\boxed{...}``."""
    found = last_boxed(completion) if isinstance(completion, str) else None
    return bool(found and found.strip())
