"""cnnlab.grading: the checks explain failures, "from scratch" detection catches the shortcuts, and
nothing a notebook does to numpy or cnnlab changes a verdict.

Student code is simulated the way IPython runs it: compiled from a cell-like file name with its
source registered in ``linecache``, in a namespace of its own (the notebook's globals).
"""

import functools
import linecache
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import cnnlab.nn
from cnnlab.grading import (
    CheckFailed,
    FromScratchError,
    TamperError,
    assert_untampered,
    check_close,
    check_equal,
    check_from_scratch,
    check_raises,
    check_shape,
    check_true,
    check_type,
    from_scratch,
    reference,
    static_violations,
    torch_functional,
)

_cell = 0


def notebook(source: str, namespace: dict | None = None) -> dict:
    """Run ``source`` as a notebook cell would and return the notebook's namespace."""
    global _cell
    _cell += 1
    filename = f"/tmp/ipykernel_0/{_cell}.py"  # where ipykernel puts its cells
    source = textwrap.dedent(source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns = namespace if namespace is not None else {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), ns)
    return ns


RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 6, 6))
W = RNG.normal(size=(4, 3, 3, 3))
B = RNG.normal(size=4)

HONEST = """
import numpy as np

def conv(x, w, b):
    N, C, H, W_ = x.shape
    K, _, F, _ = w.shape
    out = np.zeros((N, K, H - F + 1, W_ - F + 1))
    for i in range(H - F + 1):
        for j in range(W_ - F + 1):
            block = x[:, :, i:i + F, j:j + F].reshape(N, -1)   # (N, C*F*F)
            out[:, :, i, j] = block @ w.reshape(K, -1).T + b   # (N, K)
    return out
"""


# -- checks ------------------------------------------------------------------------------------


def test_check_shape_says_got_expected_and_hint():
    check_shape(np.zeros((2, 3)), (2, 3))
    check_shape((2, 3), (2, 3))
    with pytest.raises(CheckFailed) as err:
        check_shape(
            np.zeros((2, 3, 3, 3)), (2, 3, 2, 2), hint="did you divide by the stride?", what="conv"
        )
    text = str(err.value)
    assert "conv: shape (2, 3, 3, 3), expected (2, 3, 2, 2)" in text
    assert "Hint: did you divide by the stride?" in text
    with pytest.raises(CheckFailed, match="got a list"):
        check_shape([1, 2], (2,))


def test_check_close_passes_within_tolerance_and_names_the_worst_element():
    a = np.arange(12.0).reshape(3, 4)
    check_close(a + 1e-9, a)
    check_close([1.0, np.nan], [1.0, np.nan])
    check_close(np.inf, np.inf)
    b = a.copy()
    b[2, 1] += 0.5
    b[0, 0] += 0.1
    with pytest.raises(CheckFailed) as err:
        check_close(b, a, hint="look at the chapter", what="out")
    text = str(err.value)
    assert "2 of 12 values differ" in text
    assert "index (2, 1)" in text and "got 9.5" in text and "expected 9" in text
    assert "Hint: look at the chapter" in text


@pytest.mark.parametrize(
    ("got", "expected", "needle"),
    [
        (np.zeros((2, 3)), np.zeros((3, 2)), "shape (2, 3), expected (3, 2)"),
        (None, np.zeros(2), "got None"),
        ([1.0, np.nan], [1.0, 2.0], "is nan"),
        ([1.0, 2.0], [1.0, np.nan], "expected nan"),
        (np.inf, 1.0, "got inf"),
        ("abc", 1.0, "expected numbers"),
    ],
)
def test_check_close_failures(got, expected, needle):
    with pytest.raises(CheckFailed) as err:
        check_close(got, expected)
    assert needle in str(err.value)


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 6), elements=st.floats(-1e3, 1e3) | st.just(float("nan"))),
    st.floats(-1e-3, 1e-3),
    st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]),
    st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]),
)
def test_check_close_agrees_with_numpy_isclose(expected, shift, rtol, atol):
    """The private arithmetic decides like np.isclose(got, expected, rtol, atol, equal_nan=True)."""
    assert_decides_like_isclose(expected + shift * np.arange(expected.size), expected, rtol, atol)


def assert_decides_like_isclose(got, expected, rtol, atol):
    numpy_says = bool(np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True).all())
    try:
        check_close(got, expected, rtol=rtol, atol=atol)
        ours = True
    except CheckFailed:
        ours = False
    assert ours == numpy_says, (got, expected, rtol, atol)


SPECIAL = st.sampled_from([np.inf, -np.inf, np.nan])


@st.composite
def got_and_expected(draw):
    """Two arrays of one shape, with infinities and NaNs: ``got`` is ``expected`` shifted, except
    where an independent value replaces it (a finite value where inf is expected, -inf for inf)."""
    n = draw(st.integers(1, 6))
    elements = st.floats(-1e3, 1e3) | SPECIAL
    expected = draw(arrays(np.float64, n, elements=elements))
    other = draw(arrays(np.float64, n, elements=elements))
    replace = draw(arrays(np.bool_, n))
    shift = draw(st.floats(-1e-3, 1e-3))
    return np.where(replace, other, expected + shift), expected


@settings(max_examples=300, deadline=None)
@given(
    got_and_expected(),
    st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]),
    st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]),
)
def test_check_close_agrees_with_numpy_isclose_on_inf_and_nan(pair, rtol, atol):
    """With inf, -inf and NaN on either side: an infinity matches only the same infinity, NaN only
    NaN, exactly as np.isclose(got, expected, rtol, atol, equal_nan=True) decides."""
    got, expected = pair
    with np.errstate(invalid="ignore"):   # np.isclose itself computes inf - inf
        assert_decides_like_isclose(got, expected, rtol, atol)


@pytest.mark.parametrize(
    ("got", "expected"),
    [(5.0, np.inf), (-np.inf, np.inf), (np.inf, -np.inf), (1e308, np.inf),
     ([np.inf, 1.0], [1.0, 1.0])],
)
def test_check_close_rejects_a_finite_value_where_inf_is_expected(got, expected):
    with pytest.raises(CheckFailed, match="values differ"):
        check_close(got, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("rtol", [0.0, 1e-6])
@pytest.mark.parametrize(
    ("got", "expected"),
    [(np.inf, np.inf), (-np.inf, np.inf), ([np.nan, np.inf], [np.nan, np.inf]), (1.0, np.inf)],
)
def test_check_close_writes_no_warning_on_inf(got, expected, rtol):
    """A graded cell that writes to stderr scores 0 in nbgrader, so inf - inf must stay silent."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            check_close(got, expected, rtol=rtol)
        except CheckFailed:
            pass


def test_check_close_ignores_a_patched_numpy(monkeypatch):
    """A notebook that makes np.allclose / np.testing always agree changes nothing."""
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "isclose", lambda a, b, **k: np.ones(np.shape(a), dtype=bool))
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    monkeypatch.setattr(np, "abs", lambda a: np.zeros_like(a))
    monkeypatch.setattr(np, "where", lambda c, a, b: b)
    with pytest.raises(CheckFailed, match="3 of 3 values differ"):
        check_close(np.ones(3), np.zeros(3))


def test_check_equal_and_check_true_and_check_type():
    check_equal(760, 760)
    check_equal(760.0, 760)
    check_equal((32, 32, 10), (32, 32, 10))
    for got, expected in [(761, 760), (True, 1), ("760", 760), ([32, 32], (32, 32)), (7.5, 7)]:
        with pytest.raises(CheckFailed, match="expected"):
            check_equal(got, expected)
    check_true(1 < 2, "never shown")
    with pytest.raises(CheckFailed, match="custom message"):
        check_true(False, "custom message")
    check_type(3, int)
    with pytest.raises(CheckFailed, match="got a float .* expected a int"):
        check_type(3.0, int)


@pytest.mark.parametrize(
    ("got", "expected", "passes"),
    [
        (1.0 + 0.9e-6, 1.0, True), (1.0 + 1.2e-6, 1.0, False),   # default rtol 1e-6 ...
        (0.9e-8, 0.0, True), (1.2e-8, 0.0, False),               # ... and default atol 1e-8
        (-1.0 - 0.9e-6, -1.0, True), (-1.0 - 1.2e-6, -1.0, False),   # |expected| for negatives
    ],
)
def test_check_close_default_tolerances(got, expected, passes):
    if passes:
        check_close(got, expected)
    else:
        with pytest.raises(CheckFailed):
            check_close(got, expected)


def test_check_close_message_names_count_index_values_gap_and_tolerances():
    got, expected = np.zeros((2, 3)), np.zeros((2, 3))
    got[1, 2], got[0, 1] = 0.5, 0.25
    with pytest.raises(CheckFailed) as err:
        check_close(got, expected, rtol=1e-3, atol=1e-4, what="conv(x)", hint="see the chapter")
    text = str(err.value)
    # the pieces a student needs (checked one by one, so rewording the sentence stays free)
    assert text.startswith("conv(x): ") and text.endswith("\nHint: see the chapter")
    for piece in ("2 of 6 values", "index (1, 2)", "got 0.5", "expected 0", "0.5 >",
                  "atol 0.0001", "rtol 0.001"):
        assert piece in text, (piece, text)
    with pytest.raises(CheckFailed) as err:      # a scalar has no index; no `what`, no prefix
        check_close(3.0, 1.0, what="")
    assert str(err.value).startswith("1 of 1 values") and "index" not in str(err.value)
    assert "got 3" in str(err.value) and "expected 1" in str(err.value)
    with pytest.raises(CheckFailed, match=r"^result: .*shape \(3,\).*expected \(2,\)"):
        check_close([1.0, 2.0, 3.0], [1.0, 2.0])


def test_check_shape_and_check_type_messages():
    check_shape(np.zeros((2, 3)), [2, 3])                  # any sequence of ints as expected
    with pytest.raises(CheckFailed, match=r"^out: .*\bint\b.*shape \(2,\)"):
        check_shape(5, (2,), what="out")
    check_type(3.0, (int, float))
    with pytest.raises(CheckFailed, match=r"^result: .*\bstr\b.*'3'.*\bint or float\b"):
        check_type("3", (int, float))


def test_check_equal_numpy_scalars_and_arrays():
    check_equal(np.int64(760), 760)
    check_equal(np.float64(760.0), 760)
    check_equal(np.array([1, 2]), np.array([1, 2]))
    check_equal("conv", "conv")
    for got, expected in [(np.array([1, 3]), np.array([1, 2])), (np.True_, 1), (760.5, 760),
                          (None, 760), ("conv ", "conv")]:
        with pytest.raises(CheckFailed, match=r"^result: got .*(, expected|Expected)"):
            check_equal(got, expected)


def test_check_raises_matches_case_insensitively_and_names_the_call():
    def boom(x, y=0):
        raise ValueError("Stride S Must Be >= 1")

    check_raises(boom, 1, match="stride s must")
    with pytest.raises(CheckFailed) as err:
        check_raises(boom, np.zeros((2, 3)), y=4, match=("stride", "pad", "kernel"))
    text = str(err.value)
    assert text.startswith("boom(<array (2, 3)>, y=4): ") and "ValueError" in text
    assert "'pad', 'kernel'" in text and "'stride'" not in text   # only the missing ones
    with pytest.raises(CheckFailed, match=r"^conv2d\(x, w\): .*returned 3"):
        check_raises(lambda: 3, what="conv2d(x, w)")
    with pytest.raises(CheckFailed, match="raised KeyError"):
        check_raises(lambda: {}["k"], exception=ValueError)


def test_check_raises():
    def fits(n, f, s):
        if (n - f) % s:
            raise ValueError(f"a {f}x{f} filter does not fit a {n}x{n} input with stride {s}")
        return (n - f) // s + 1

    # a pass returns None: as a cell's last line it displays nothing
    assert check_raises(fits, 7, 3, 3, exception=ValueError, match=("7x7", "stride 3")) is None
    with pytest.raises(CheckFailed, match=r"returned 3 instead of raising ValueError"):
        check_raises(fits, 7, 3, 2)
    with pytest.raises(CheckFailed, match="expected its message to mention 'pad'"):
        check_raises(fits, 7, 3, 3, match="pad")
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError.*expected ValueError"):
        check_raises(fits, 7, 3, 0)


# -- from scratch --------------------------------------------------------------------------------


def test_an_honest_convolution_passes_and_returns_its_result():
    ns = notebook(HONEST)
    before = sys.getprofile()
    out = check_from_scratch(ns["conv"], X, W, B)
    assert sys.getprofile() is before
    check_close(out, cnnlab.nn.conv2d(X, W, B))
    assert static_violations(ns["conv"]) == []


CHEATS = {
    "calls the reference": (
        """
        import cnnlab.nn
        def conv(x, w, b):
            return cnnlab.nn.conv2d(x, w, b)
        """,
        "calls cnnlab.nn.conv2d",
    ),
    "imports it under another name": (
        """
        from cnnlab.nn import conv2d_naive as my_helper
        def conv(x, w, b):
            return my_helper(x, w, b)
        """,
        "calls cnnlab.nn.conv2d_naive",
    ),
    "hides it in a helper": (
        """
        import cnnlab.nn as L
        def helper(x, w, b):
            return L.conv2d(x, w, b)
        def conv(x, w, b):
            return helper(x, w, b)
        """,
        "your helper calls cnnlab.nn.conv2d",
    ),
    "keeps it in a default argument": (
        """
        import cnnlab.nn
        def conv(x, w, b, _f=cnnlab.nn.conv2d):
            return _f(x, w, b)
        """,
        "holds a reference to cnnlab.nn.conv2d",
    ),
    "uses torch": (
        """
        import torch
        import torch.nn.functional as F
        def conv(x, w, b):
            t = torch.from_numpy
            return F.conv2d(t(x), t(w), t(b)).numpy()
        """,
        "torch",
    ),
    "uses scipy.signal": (
        """
        import numpy as np
        from scipy import signal
        def conv(x, w, b):
            N, K = x.shape[0], w.shape[0]
            C = x.shape[1]
            out = [[sum(signal.correlate2d(x[n, c], w[k, c], mode="valid") for c in range(C))
                    + b[k] for k in range(K)] for n in range(N)]
            return np.array(out)
        """,
        "scipy.signal",
    ),
    "imports inside the function": (
        """
        def conv(x, w, b):
            from scipy.ndimage import correlate
            return correlate(x, w)
        """,
        "imports scipy.ndimage",
    ),
    "uses np.convolve": (
        """
        import numpy as np
        def conv(x, w, b):
            return np.convolve(x.ravel(), w.ravel())
        """,
        "numpy.convolve",
    ),
    "uses sliding_window_view": (
        """
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view as windows
        def conv(x, w, b):
            F = w.shape[-1]
            v = windows(x, (F, F), axis=(2, 3))                 # (N, C, H', W', F, F)
            return np.einsum("nchwij,kcij->nkhw", v, w) + b[:, None, None]
        """,
        "sliding_window_view",
    ),
}


@pytest.mark.parametrize("case", sorted(CHEATS))
def test_shortcuts_are_caught_statically(case):
    source, needle = CHEATS[case]
    ns = notebook(source)
    with pytest.raises(FromScratchError) as err:
        check_from_scratch(ns["conv"], X, W, B, chapter="book/02-convolution-layer.md")
    text = str(err.value)
    assert needle in text
    assert "asks you to write conv from scratch" in text
    assert "book/02-convolution-layer.md" in text


@pytest.mark.parametrize("case", sorted(CHEATS))
def test_shortcuts_are_caught_while_running(case):
    """With the static check off, the profiler alone catches every shortcut that runs."""
    source, _ = CHEATS[case]
    ns = notebook(source)
    before = sys.getprofile()
    with pytest.raises(FromScratchError, match="from scratch"):
        check_from_scratch(ns["conv"], X, W, B, static=False)
    assert sys.getprofile() is before


def test_a_reference_reached_dynamically_is_caught_even_if_the_error_is_swallowed():
    ns = notebook(
        """
        import importlib
        def conv(x, w, b):
            try:
                return getattr(importlib.import_module("cnnlab." + "nn"), "conv" + "2d")(x, w, b)
            except Exception:
                return 0
        """
    )
    assert static_violations(ns["conv"]) == []  # nothing to see in the source...
    with pytest.raises(FromScratchError, match="calls cnnlab.nn.conv2d"):
        check_from_scratch(ns["conv"], X, W, B)  # ...but the call is recorded


def test_a_class_that_subclasses_the_reference_is_caught():
    ns = notebook(
        """
        import torch
        from cnnlab.models import BasicBlock as Reference

        class Block(Reference):
            pass

        class Honest(torch.nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = torch.nn.Conv2d(c, c, 3, padding=1)

            def forward(self, x):
                return self.conv(x)
        """
    )
    assert static_violations(ns["Block"], forbid=("cnnlab",)) == [
        "your Block subclasses cnnlab.models.BasicBlock"
    ]
    with pytest.raises(FromScratchError, match="cnnlab.models.resnet"):
        check_from_scratch(ns["Block"], 4, 4, forbid=("cnnlab",), static=False)
    block = check_from_scratch(ns["Honest"], 4, forbid=("cnnlab",))
    assert sum(p.numel() for p in block.parameters()) == 4 * 4 * 9 + 4


def test_allow_and_forbid_choose_what_is_fair():
    ns = notebook(
        """
        import numpy as np
        from cnnlab.shapes import conv_output_size
        def out_size(x, w):
            return conv_output_size(x.shape[-1], w.shape[-1])
        def pad(x):
            return np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        """
    )
    with pytest.raises(FromScratchError, match="cnnlab.shapes"):
        check_from_scratch(ns["out_size"], X, W)
    assert check_from_scratch(ns["out_size"], X, W, allow=("cnnlab.shapes",)) == 4
    # np.pad is fine by default, forbidden where the exercise is zero padding
    assert check_from_scratch(ns["pad"], X).shape == (2, 3, 8, 8)
    with pytest.raises(FromScratchError, match="numpy.pad"):
        check_from_scratch(ns["pad"], X, forbid=("numpy.pad",))
    with pytest.raises(FromScratchError, match="numpy.pad"):
        check_from_scratch(ns["pad"], X, forbid=("numpy.pad",), static=False)


def test_the_grader_itself_and_numpy_stay_allowed():
    ns = notebook(
        """
        import numpy as np
        from cnnlab.grading import check_close
        def conv(x, w, b):
            out = np.einsum("nchw,kc->nkhw", x[:, :, :1, :1], w[:, :, 0, 0])
            check_close(out.shape, out.shape)
            return out
        """
    )
    assert check_from_scratch(ns["conv"], X, W, B).shape == (2, 4, 1, 1)


def test_from_scratch_block_restores_the_previous_profiler():
    calls = []

    def outer(frame, event, arg):
        calls.append(event)

    sys.setprofile(outer)
    try:
        with from_scratch("f"):
            np.zeros(3)
        assert sys.getprofile() is outer
    finally:
        sys.setprofile(None)


# -- references the notebook cannot change ------------------------------------------------------


def test_reference_is_a_private_copy_untouched_by_patches(monkeypatch):
    modules_before = dict(sys.modules)
    monkeypatch.setattr(cnnlab.nn, "conv2d", lambda *a, **k: "patched")
    ref = reference("cnnlab.nn")
    assert ref is not cnnlab.nn
    out = ref.conv2d(X, W, B)
    assert out.shape == (2, 4, 4, 4)
    assert cnnlab.nn.conv2d(X, W, B) == "patched"  # the notebook's view is left as it was
    assert {k: v for k, v in sys.modules.items() if k.startswith("cnnlab")} == {
        k: v for k, v in modules_before.items() if k.startswith("cnnlab")
    }
    with pytest.raises(ValueError, match="copies cnnlab modules"):
        reference("numpy")


def test_assert_untampered_names_notebook_code_in_library_namespaces(monkeypatch):
    assert_untampered("numpy", "numpy.testing", "numpy.linalg")
    ns = notebook("always = lambda *a, **k: True")
    monkeypatch.setattr(np, "allclose", ns["always"])
    with pytest.raises(TamperError, match=r"numpy\.allclose \(now defined in /tmp/ipykernel_0/"):
        assert_untampered("numpy")
    with pytest.raises(TamperError, match="numpy.allclose"):
        reference("cnnlab.shapes")
    monkeypatch.setattr(np, "allclose", functools.partial(np.isclose, atol=1e9))
    with pytest.raises(TamperError, match="functools.partial"):
        assert_untampered("numpy")


def test_torch_functional_is_checked(monkeypatch):
    F = torch_functional()
    assert F.conv2d.__module__.startswith("torch")
    ns = notebook("def conv2d(*a, **k):\n    return 0\n")
    monkeypatch.setattr(F, "conv2d", ns["conv2d"])
    with pytest.raises(TamperError, match="torch.nn.functional.conv2d"):
        torch_functional()
