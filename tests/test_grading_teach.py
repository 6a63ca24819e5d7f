"""The checks' teaching behaviour in a plain Python process: pass lines, hints that fit the
mistake, crashes reported with the student's line, accidental ValueErrors, the short display.

(The same in a real kernel, through nbgrader's Validator: tests/test_exercises_teach.py.)
"""

from __future__ import annotations

import linecache

import numpy as np
import pytest

from cnnlab.grading import (
    CheckFailed,
    check_close,
    check_equal,
    check_from_scratch,
    check_raises,
    check_shape,
    display,
    passed,
)


def test_passed_prints_one_line_to_stdout(capsys):
    passed("conv2d_naive: the slides' shapes, a 1-channel example", points=4)
    passed("flatten: one thing", points=1)
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.splitlines() == [
        "\u2713 conv2d_naive: the slides' shapes, a 1-channel example (4 points)",
        "\u2713 flatten: one thing (1 point)",
    ]


def test_a_passing_check_raises_returns_none_and_prints_nothing(capsys):
    def refuses(n):
        raise ValueError(f"bad {n}")

    assert check_raises(refuses, 3, match="3") is None
    assert capsys.readouterr() == ("", "")


def test_none_means_a_missing_return():
    for check in (
        lambda: check_close(None, [1.0], hint="add b"),
        lambda: check_shape(None, (2, 3), hint="add b"),
        lambda: check_equal(None, 3, hint="add b"),
    ):
        with pytest.raises(CheckFailed, match="forget to `return`") as info:
            check()
        assert "add b" not in str(info.value)


def test_an_integer_result_that_lost_fractions_gets_the_dtype_hint():
    with pytest.raises(CheckFailed, match="integer dtype int64") as info:
        check_close(np.array([9, 2]), [9.5, 2.0], hint="add b")
    assert "add b" not in str(info.value)
    with pytest.raises(CheckFailed, match="integer dtype int"):
        check_close(9, 9.5, hint="add b")
    # integers that are simply wrong keep the caller's hint
    with pytest.raises(CheckFailed, match="Hint: add b"):
        check_close(np.array([8, 2]), [9.0, 2.0], hint="add b")


def test_a_known_wrong_value_gets_its_own_hint():
    want = np.array([1.5, 2.5])
    mistakes = [(want - 0.5, "the bias is missing"), (want[::-1], "flipped")]
    with pytest.raises(CheckFailed, match="Hint: the bias is missing"):
        check_close(want - 0.5, want, hint="generic", mistakes=mistakes)
    with pytest.raises(CheckFailed, match="Hint: flipped"):
        check_close(want[::-1], want, hint="generic", mistakes=mistakes)
    with pytest.raises(CheckFailed, match="Hint: generic"):
        check_close(want * 3, want, hint="generic", mistakes=mistakes)
    check_close(want, want, mistakes=mistakes)  # a right answer passes, whatever the mistakes


def notebook_function(source: str, name: str):
    """Define ``name`` from ``source`` as a notebook cell would: module __main__, source cached."""
    filename = f"<cell-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    scope = {"__name__": "__main__", "np": np}
    exec(compile(source, filename, "exec"), scope)
    return scope[name]


def test_a_crash_names_the_call_the_error_and_the_students_line():
    conv = notebook_function(
        "def conv(x):\n    y = np.ones(3) + np.ones(4)\n    return y\n", "conv"
    )
    with pytest.raises(CheckFailed) as info:
        check_from_scratch(conv, np.ones((2, 2)), hint="pad first")
    text = str(info.value)
    assert text.startswith(
        "conv(<array (2, 2)>) raised ValueError: operands could not be broadcast"
    )
    assert "line 2: `y = np.ones(3) + np.ones(4)`" in text and text.endswith("Hint: pad first")


def test_an_unwritten_function_says_so():
    todo = notebook_function("def todo(x):\n    raise NotImplementedError()\n", "todo")
    with pytest.raises(CheckFailed, match=r"todo is not written yet: replace `raise Not"):
        check_from_scratch(todo, 1)


def test_a_valueerror_numpy_raised_by_accident_is_not_the_one_asked_for():
    pad = notebook_function(
        "def pad(x, p):\n"
        "    out = np.zeros((1, 1, 1 + 2 * p, 1 + 2 * p))\n"
        "    out[:, :, p:p + 3, p:p + 3] = x\n"
        "    return out\n",
        "pad",
    )
    with pytest.raises(CheckFailed, match=r"at your line \d: .* not a ValueError of its own"):
        check_raises(pad, np.ones((1, 1, 3, 3)), -1, hint="raise ValueError for a negative pad")
    own = notebook_function(
        "def own(x, p):\n    if p < 0:\n        raise ValueError(f'pad {p} < 0')\n    return x\n",
        "own",
    )
    assert check_raises(own, np.ones(1), -1, match="-1") is None


def test_the_short_display():
    err = CheckFailed("conv: got 1, expected 2.\nHint: add b")
    assert display.short_traceback(CheckFailed, err) == [
        f"{display.RED}CheckFailed{display.RESET}: conv: got 1, expected 2.\nHint: add b"
    ]
    # no IPython shell here: nothing is installed
    assert display.install((CheckFailed,)) is False


def test_an_error_from_inside_numpy_or_from_elsewhere():
    pad = notebook_function("def np_pad(x, p):\n    return np.pad(x, p)\n", "np_pad")
    with pytest.raises(CheckFailed, match="inside numpy, called from your line 2"):
        check_raises(pad, np.ones((2, 2)), -1)

    # an error raised by other code (a helper module, a proxy to the student's kernel) is the
    # function's own: only NumPy, PyTorch and SciPy errors count as accidents
    def proxy(*args):
        raise ValueError("pad -1 < 0")

    forward = notebook_function("def forward(p):\n    return proxy(p)\n", "forward")
    forward.__globals__["proxy"] = proxy
    assert check_raises(forward, -1, match="-1") is None
