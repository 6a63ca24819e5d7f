"""Assertions for graded test cells: a failure says what was expected, what came back, a hint.

Every check raises :class:`CheckFailed` (an ``AssertionError``: nbgrader scores the cell 0) with
a message of the form::

    conv2d_naive(x, w, b): shape (2, 3, 3, 3), expected (2, 3, 2, 2).
    Hint: did you divide by the stride? See book/03-spatial-dimensions.md

A check that passes prints nothing; the last line of a graded cell, :func:`passed`, prints one line
to stdout (``✓ conv2d_naive: the slides' shapes (4 points)``). The hint is the caller's, unless
the result itself shows a likelier mistake: ``None`` (a missing ``return``), an integer array where
the expected values have fractions (a dtype that truncates), or a value listed in ``mistakes=``.

The comparisons use their own arithmetic on private references to NumPy's ufuncs, captured when this
module is imported: a notebook that reassigns ``np.allclose``, ``np.isclose`` or ``np.testing``
before the graded cell runs changes nothing here.
"""

from __future__ import annotations

import numbers

import numpy as _numpy

# Private references, captured at import time. ndarray methods (.max, .reshape, ...) belong to a C
# type that Python code cannot patch; ufuncs are taken from NumPy's C module, not from the
# `numpy` namespace a notebook can reassign.
from numpy._core import umath as _umath

_asarray = _numpy.asarray
_ndarray = _numpy.ndarray
_abs = _umath.absolute
_isnan = _umath.isnan
_isinf = _umath.isinf
_greater = _umath.greater
_subtract = _umath.subtract
_equal = _umath.equal
_logical_and = _umath.logical_and
_logical_or = _umath.logical_or
_logical_not = _umath.logical_not
_isinstance = isinstance
_unravel_index = _numpy.unravel_index
_argmax = _ndarray.argmax
_float64 = _numpy.float64
_where = _numpy.where
_errstate = _numpy.errstate
_INF = float("inf")

__all__ = [
    "CheckFailed",
    "check_shape",
    "check_close",
    "check_equal",
    "check_true",
    "check_raises",
    "check_type",
    "passed",
]


class CheckFailed(AssertionError):
    """A graded check failed; the message says what was expected, what came back, and a hint."""


def _fail(what: str, message: str, hint: str | None) -> None:
    text = f"{what}: {message}" if what else message
    if hint:
        text += f"\nHint: {hint}"
    raise CheckFailed(text)


def passed(what: str, points: float | None = None) -> None:
    """Print the one line of a graded cell whose checks all passed, to stdout.

    >>> passed("conv2d_naive: the slides' shapes, a 1-channel example", points=4)
    ✓ conv2d_naive: the slides' shapes, a 1-channel example (4 points)
    """
    if points is None:
        print(f"\u2713 {what}")
    else:
        unit = "point" if float(points) == 1 else "points"
        print(f"\u2713 {what} ({float(points):g} {unit})")


_NO_RETURN = "got None: did the function forget to `return` its result?"


def _shape_of(value) -> tuple | None:
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        return None


def _fmt_number(v) -> str:
    """One element of check_close's float64 arrays, in six significant digits."""
    return f"{float(v):.6g}"


def check_type(got, expected_type, hint: str | None = None, what: str = "result") -> None:
    """Fail unless ``got`` is an instance of ``expected_type`` (a type or tuple of types)."""
    if not _isinstance(got, expected_type):
        names = (
            " or ".join(t.__name__ for t in expected_type)
            if _isinstance(expected_type, tuple)
            else expected_type.__name__
        )
        _fail(what, f"got a {type(got).__name__} ({got!r:.80}), expected a {names}.", hint)


def check_shape(got, expected, hint: str | None = None, what: str = "result") -> None:
    """Fail unless ``got`` (an array, or a shape tuple) has the shape ``expected``.

    >>> check_shape(np.zeros((2, 3)), (2, 3))
    """
    expected = tuple(int(s) for s in expected)
    if _isinstance(got, tuple):
        shape = tuple(got)
    else:
        shape = _shape_of(got)
        if got is None:
            _fail(what, f"{_NO_RETURN} Expected an array of shape {expected}.", None)
        if shape is None:
            _fail(what, f"got a {type(got).__name__}, expected an array of shape {expected}.", hint)
    if shape != expected:
        _fail(what, f"shape {shape}, expected {expected}.", hint)


@_errstate(invalid="ignore")  # inf - inf, 0 * inf: no RuntimeWarning on stderr (it scores 0)
def check_close(
    got,
    expected,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    hint: str | None = None,
    what: str = "result",
    mistakes=(),
) -> None:
    """Fail unless ``|got - expected| <= atol + rtol * |expected|`` everywhere (shapes must match).

    The message gives the shapes, or the worst element: its index, both values and the gap.
    NaN in ``got`` fails unless ``expected`` has NaN at the same place.

    ``mistakes`` lists ``(wrong_value, hint)`` pairs, the results of known wrong answers (the
    expected value without the bias, with the filter flipped, ...): when ``got`` is close to one of
    them, its hint replaces ``hint``. An integer ``got`` whose mismatches are fractions in
    ``expected`` gets a hint about the dtype instead.
    """
    if got is None:
        _fail(what, _NO_RETURN, None)
    try:
        g = _asarray(got, dtype=_float64)
    except (TypeError, ValueError):
        _fail(what, f"got {type(got).__name__} {got!r:.80}, expected numbers.", hint)
    e = _asarray(expected, dtype=_float64)
    if g.shape != e.shape:
        _fail(what, f"shape {g.shape}, expected {e.shape}.", hint)
    if g.size == 0:
        return
    nan_g, nan_e = _isnan(g), _isnan(e)
    bad_nan = _logical_or(
        _logical_and(nan_g, _logical_not(nan_e)), _logical_and(nan_e, _logical_not(nan_g))
    )
    if bad_nan.any():
        idx = _unravel_index(int(_argmax(bad_nan)), g.shape)
        _fail(
            what,
            f"value at index {tuple(int(i) for i in idx)} is {_fmt_number(g[idx])}, "
            f"expected {_fmt_number(e[idx])}.",
            hint,
        )
    both_nan = _logical_and(nan_g, nan_e)
    inf_mismatch = _logical_and(_logical_or(_isinf(g), _isinf(e)), _logical_not(_equal(g, e)))
    with _errstate(invalid="ignore"):
        gap = _abs(_subtract(g, e))
    gap = _where(both_nan, 0.0, gap)
    gap = _where(_logical_and(_logical_or(_isinf(g), _isinf(e)), _equal(g, e)), 0.0, gap)
    allowed = atol + rtol * _abs(_where(_isnan(e), 0.0, e))
    bad = _logical_or(_greater(gap, allowed), inf_mismatch)
    if bad.any():
        excess = _where(bad, gap - allowed, -1.0)
        excess = _where(_isnan(excess), _INF, excess)
        idx = _unravel_index(int(_argmax(excess)), g.shape)
        n_bad = int(bad.sum())
        where = f" at index {tuple(int(i) for i in idx)}" if g.ndim else ""
        hint = _likelier_hint(got, g, e, bad, rtol, atol, mistakes) or hint
        _fail(
            what,
            f"{n_bad} of {g.size} values differ; worst{where}: got {_fmt_number(g[idx])}, "
            f"expected {_fmt_number(e[idx])} (|gap| {_fmt_number(gap[idx])} > "
            f"atol {atol:g} + rtol {rtol:g} * |expected|).",
            hint,
        )


def _integer_dtype(got) -> str | None:
    """The name of got's integer dtype (``int``, ``int64``, ``torch.int64``, ...), or None."""
    if _isinstance(got, bool):
        return None
    if _isinstance(got, numbers.Integral):
        return type(got).__name__
    dtype = getattr(got, "dtype", None)
    if getattr(dtype, "kind", None) in ("i", "u"):            # NumPy's integer kinds
        return str(dtype)
    # a torch dtype has no .kind (a NumPy-style `"" in "iu"` test would call every tensor an
    # integer one); it says is_floating_point and is_complex instead
    if (getattr(dtype, "is_floating_point", True) is False
            and getattr(dtype, "is_complex", True) is False and str(dtype) != "torch.bool"):
        return str(dtype)
    return None


def _likelier_hint(got, g, e, bad, rtol, atol, mistakes) -> str | None:
    """A hint that fits the mistake the values show, when one does (else None)."""
    dtype = _integer_dtype(got)
    if dtype is not None:
        fractions = _logical_and(bad, _logical_not(_equal(e, e.round())))
        if fractions.any():
            return (
                f"your result has the integer dtype {dtype}, so fractions were cut off: "
                "compute in floats (no int(...); create arrays with dtype=float, or "
                "np.zeros_like(x, dtype=float))."
            )
    for wrong, wrong_hint in mistakes:
        w = _asarray(wrong, dtype=_float64)
        if w.shape == g.shape and not _greater(
            _abs(_subtract(g, w)), atol + rtol * _abs(w)
        ).any():
            return wrong_hint
    return None


def check_equal(got, expected, hint: str | None = None, what: str = "result") -> None:
    """Fail unless ``got == expected`` for plain values (ints, strings, tuples), exactly.

    Whole numbers compare by value (``760 == 760.0`` passes, ``True`` is not ``1``).
    """
    if _isinstance(expected, numbers.Integral) and not _isinstance(expected, bool):
        ok = (
            _isinstance(got, numbers.Real)
            and not _isinstance(got, bool)
            and float(got).is_integer()
            and int(got) == int(expected)
        )
    else:
        ok = type(got) is type(expected) and got == expected
        if _isinstance(ok, _ndarray):  # an array slipped in: compare it as a whole
            ok = bool(ok.all())
    if not ok:
        if got is None:
            _fail(what, f"{_NO_RETURN} Expected {expected!r:.200}.", None)
        _fail(what, f"got {got!r:.200}, expected {expected!r:.200}.", hint)


def check_true(condition: bool, message: str, hint: str | None = None, what: str = "") -> None:
    """Fail with ``message`` unless ``condition`` holds (for checks the others do not cover)."""
    if not bool(condition):
        _fail(what, message, hint)


def check_raises(
    func,
    *args,
    exception: type[BaseException] = ValueError,
    match: str | tuple[str, ...] | None = None,
    hint: str | None = None,
    what: str | None = None,
    **kwargs,
) -> None:
    """Fail unless ``func(*args, **kwargs)`` raises ``exception`` whose message contains ``match``.

    ``match`` is a substring (or a tuple of substrings that must all appear); case-insensitive.
    Returns None, so that a passing ``check_raises`` at the end of a cell displays nothing (an
    exception as the cell's value would be shown, and nbgrader would try to read it as a score).
    """
    call = what or f"{getattr(func, '__name__', 'function')}{_fmt_args(args, kwargs)}"
    try:
        result = func(*args, **kwargs)
    except exception as err:
        accident = _raised_by_accident(err)
        if accident:
            _fail(
                call,
                f"raised {type(err).__name__}({str(err).strip()!r:.160}) {accident}, not a "
                f"{exception.__name__} of its own.",
                hint,
            )
        if match is not None:
            needles = (match,) if _isinstance(match, str) else tuple(match)
            text = str(err).lower()
            missing = [m for m in needles if m.lower() not in text]
            if missing:
                _fail(
                    call,
                    f"raised {type(err).__name__}({str(err)!r:.200}), expected its message to "
                    f"mention {', '.join(repr(m) for m in missing)}.",
                    hint,
                )
        return None
    except Exception as err:  # report the wrong exception type to the student
        _fail(call, f"raised {type(err).__name__}: {err}, expected {exception.__name__}.", hint)
    else:
        shape = _shape_of(result)
        shown = f"an array of shape {shape}" if shape is not None else f"{result!r:.80}"
        _fail(call, f"returned {shown} instead of raising {exception.__name__}.", hint)
    raise AssertionError("unreachable")  # pragma: no cover


def _raised_by_accident(err: BaseException) -> str | None:
    """Where ``err`` came from, when notebook code did not raise it itself, else None.

    A broadcast or reshape error inside NumPy is a ``ValueError`` too, but not the one an exercise
    asks for. Looked at only when the traceback holds notebook frames (``__main__``): elsewhere
    (a plain process, a proxy) every error counts as the function's own.
    """
    import linecache

    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    mine = [(f, n) for f, n in frames if f.f_globals.get("__name__") == "__main__"]
    if not mine:
        return None
    frame, lineno = mine[-1]
    line = linecache.getline(frame.f_code.co_filename, lineno).strip()
    if not line:
        return None
    inner = frames[-1][0]
    if inner is not frame:
        # raised further in: by a numerical library the student called, or by anything else
        # (a proxy, a helper module), which counts as the function's own
        module = str(inner.f_globals.get("__name__", "")).split(".")[0]
        if module in _NUMERICAL_LIBRARIES:
            return f"inside {module}, called from your line {lineno}: `{line:.80}`"
        return None
    if line.startswith("raise"):
        return None
    return f"at your line {lineno}: `{line:.80}`"


_NUMERICAL_LIBRARIES = ("numpy", "torch", "scipy")


def _fmt_args(args, kwargs) -> str:
    parts = []
    for a in args:
        shape = _shape_of(a)
        parts.append(f"<array {shape}>" if shape is not None else repr(a))
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"
