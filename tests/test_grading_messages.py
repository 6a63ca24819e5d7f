"""What the checks say when they fail, path by path: the caller's ``what`` in front, the caller's
hint at the end, the values that explain the failure in between.

Written against the survivors of a mutation run over cnnlab/grading/checks.py (``make mutants``,
docs/mutants.md): each test here failed for at least one realistic change to the messages or to
the arguments the checks pass on (a hint dropped, kwargs not forwarded, an array shown as
``None``), which the behaviour tests elsewhere did not notice.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from test_grading_teach import notebook_function

from cnnlab.grading import checks


def message(check, *args, **kwargs) -> str:
    with pytest.raises(checks.CheckFailed) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_passed_without_points_prints_the_name_of_the_check(capsys):
    checks.passed("flatten: the shapes")
    assert capsys.readouterr().out == "\u2713 flatten: the shapes\n"


def _accident(x):
    return np.ones(3) + np.ones(4)


def _returns(*args, **kwargs):
    return None


def _raises_type_error(x):
    raise TypeError("not a number")


FAILURES = {
    "check_type": lambda **kw: checks.check_type(1, str, **kw),
    "check_shape, wrong shape": lambda **kw: checks.check_shape(np.zeros(2), (3,), **kw),
    "check_shape, not an array": lambda **kw: checks.check_shape(5, (3,), **kw),
    "check_close": lambda **kw: checks.check_close(np.ones(2), np.zeros(2), **kw),
    "check_equal": lambda **kw: checks.check_equal(1, 2, **kw),
    "check_true": lambda **kw: checks.check_true(False, "the sum is 3", **kw),
    "check_raises, no error": lambda **kw: checks.check_raises(_returns, 1, **kw),
    "check_raises, wrong type": lambda **kw: checks.check_raises(_raises_type_error, 1,
                                                                  **kw),
    "check_raises, wrong message": lambda **kw: checks.check_raises(
        notebook_function("def bad(x):\n    raise ValueError(f'bad {x}')\n", "bad"), 1,
        match="stride", **kw),
    "check_raises, by accident": lambda **kw: checks.check_raises(
        notebook_function("def acc(x):\n    return np.ones(3) + np.ones(4)\n", "acc"), 1, **kw),
}


@pytest.mark.parametrize("fail", FAILURES.values(), ids=FAILURES.keys())
def test_every_failure_starts_with_what_and_ends_with_the_callers_hint(fail):
    text = message(fail, hint="see chapter 3", what="conv2d(x)")
    assert text.startswith("conv2d(x): "), text
    assert text.endswith("\nHint: see chapter 3"), text


def test_a_missing_return_still_names_what_was_checked():
    assert message(checks.check_shape, None, (3,), what="pool(x)").startswith("pool(x): got None")


def test_the_default_what():
    assert message(checks.check_shape, np.zeros(2), (3,)) == "result: shape (2,), expected (3,)."
    assert message(checks.check_true, False, "the sum is 3") == "the sum is 3"


def test_bool_and_torch_floats_are_not_integer_results():
    for got, expected in ((True, 0.25), (torch.tensor([0.5]), [0.25]),
                          (np.array([0.5], dtype=np.float32), [0.25])):
        assert message(checks.check_close, got, expected, hint="add b").endswith("Hint: add b")


def test_the_integer_dtype_hint_in_full_and_for_torch_too():
    hint = ("your result has the integer dtype {}, so fractions were cut off: compute in floats "
            "(no int(...); create arrays with dtype=float, or np.zeros_like(x, dtype=float)).")
    assert message(checks.check_close, np.array([1], dtype=np.int32), [1.5]).endswith(
        "Hint: " + hint.format("int32"))
    assert message(checks.check_close, torch.tensor([1]), [1.5]).endswith(
        "Hint: " + hint.format("torch.int64"))
    assert message(checks.check_close, np.array([1], dtype=np.uint8), [1.5]).endswith(
        "Hint: " + hint.format("uint8"))


def test_a_known_mistake_matches_within_a_tolerance_relative_to_its_own_size():
    wrong = np.array([1000.0])
    text = message(checks.check_close, np.array([1000.5]), [0.0], rtol=1e-3, atol=0.0,
                   hint="generic", mistakes=[(wrong, "the bias is added twice")])
    assert text.endswith("Hint: the bias is added twice")


def test_check_equal_keeps_true_apart_from_one():
    assert message(checks.check_equal, 1, True) == "result: got 1, expected True."
    checks.check_equal(True, True)


def test_check_raises_passes_keyword_arguments_on():
    def conv(x, *, stride=1):
        if stride < 1:
            raise ValueError(f"stride {stride} < 1")
        return x

    assert checks.check_raises(conv, 1, stride=0, match="stride 0") is None


def test_check_raises_names_a_call_without_a_name_and_shows_its_arguments():
    call = functools.partial(_returns)                   # a partial has no __name__
    assert message(checks.check_raises, call, 3, "a", k=2).startswith(
        "function(3, 'a', k=2): returned None instead of raising ValueError.")
    assert message(checks.check_raises, _returns, np.zeros((2, 3))).startswith(
        "_returns(<array (2, 3)>): returned None")


def test_check_raises_shows_what_came_back_instead_of_the_error():
    assert message(checks.check_raises, lambda x: np.zeros((2, 3)), 1).startswith(
        "<lambda>(1): returned an array of shape (2, 3) instead of raising ValueError.")
    assert message(checks.check_raises, lambda x: 5, 1).startswith(
        "<lambda>(1): returned 5 instead")


def test_check_raises_quotes_the_error_it_got():
    acc = notebook_function("def acc2(x):\n    return np.ones(3) + np.ones(4)\n", "acc2")
    assert message(checks.check_raises, acc, 1).startswith(
        "acc2(1): raised ValueError('operands could not be broadcast")
    bad = notebook_function("def bad2(x):\n    raise ValueError(f'bad {x}')\n", "bad2")
    assert message(checks.check_raises, bad, 1, match="stride").startswith(
        "bad2(1): raised ValueError('bad 1'), expected its message to mention 'stride'.")


def test_an_error_from_code_whose_module_has_no_name_is_the_functions_own():
    helper_scope: dict = {}                              # exec'd without a __name__
    exec("def helper(p):\n    raise ValueError(f'pad {p} < 0')\n", helper_scope)
    assert "__name__" not in helper_scope
    forward = notebook_function("def forward3(p):\n    return helper(p)\n", "forward3")
    forward.__globals__["helper"] = helper_scope["helper"]
    assert checks.check_raises(forward, -1, match="-1") is None
