"""im2col / col2im and zero_pad: the column layout against torch's F.unfold, col2im as the exact
adjoint of im2col (<col2im(c), x> == <c, im2col(x)>) and against F.fold, zero_pad against F.pad."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnlab.nn import col2im, im2col, zero_pad


def close(a, b):
    """Sweeps compare elementwise with rtol 1e-9 plus atol 1e-12: a random entry that happens to be
    near zero would make a max-relative-error check flaky (its 1e-16 rounding reads as large)."""
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@st.composite
def case(draw):
    F, S = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    P = draw(st.integers(0, 2))
    Ho, Wo = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = (Ho - 1) * S + F - 2 * P, (Wo - 1) * S + F - 2 * P
    assume(H >= 1 and W >= 1)
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, C, H, W), F, S, P, np.random.default_rng(draw(st.integers(0, 2**16)))


@settings(max_examples=40, deadline=None)
@given(c=case())
def test_im2col_equals_torch_unfold_and_col2im_equals_fold(c):
    shape, F, S, P, rng = c
    x = rng.normal(size=shape)
    cols = im2col(x, F, S, P)
    ref = TF.unfold(torch.tensor(x), F, padding=P, stride=S).numpy()   # (N, C*F*F, H'*W')
    np.testing.assert_array_equal(cols, ref)
    c_ = rng.normal(size=cols.shape)
    back = col2im(c_, shape, F, S, P)
    fold = TF.fold(torch.tensor(c_), shape[2:], F, padding=P, stride=S).numpy()
    assert back.shape == shape
    close(back, fold)
    # adjoint: <col2im(c), x> == <c, im2col(x)>
    assert abs(np.vdot(back, x) - np.vdot(c_, cols)) < 1e-9 * (1 + abs(np.vdot(c_, cols)))


def test_im2col_small_example_by_hand():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    cols = im2col(x, 2)                 # 4 windows of a 3x3 image, each a column of 4 values
    np.testing.assert_array_equal(cols[0, :, 0], [0, 1, 3, 4])
    np.testing.assert_array_equal(cols[0, :, 3], [4, 5, 7, 8])
    assert cols.shape == (1, 4, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = np.ones((1, 2, 4, 4), dtype=dtype)
    assert im2col(x, 3, 1, 1).dtype == dtype
    assert col2im(im2col(x, 3, 1, 1), x.shape, 3, 1, 1).dtype == dtype
    assert zero_pad(x, 2).dtype == dtype


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
       P=st.integers(0, 3))
def test_zero_pad_equals_torch_pad(shape, P):
    x = np.random.default_rng(0).normal(size=shape)
    out = zero_pad(x, P)
    assert out.shape == (shape[0], shape[1], shape[2] + 2 * P, shape[3] + 2 * P)
    np.testing.assert_array_equal(out, TF.pad(torch.tensor(x), (P, P, P, P)).numpy())
    assert out is not x


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: im2col(np.ones((3, 5, 5)), 3), r"x must be 4-D"),
        (lambda: im2col(np.ones((1, 1, 7, 7)), 3, 3), "3x3 filter does not fit a 7x7 input"),
        (lambda: col2im(np.ones((1, 9, 5)), (1, 1, 4, 4), 3),
         r"cols must have shape \(1, 9, 4\) \(N, C\*F\*F, H'\*W'\), got \(1, 9, 5\)"),
        (lambda: col2im(np.ones((1, 9, 4)), (1, 4, 4), 3), r"x_shape must be \(N, C, H, W\)"),
        (lambda: zero_pad(np.ones((2, 2)), -1), "pad P must be a whole number >= 0, got -1"),
        (lambda: zero_pad(np.ones(3), 1), r"at least 2 axes"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_rule(call, match):
    with pytest.raises(ValueError, match=match):
        call()
