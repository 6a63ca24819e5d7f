"""max_pool2d / avg_pool2d and their backward passes against torch.nn.functional and autograd
(float64, rel_error < 1e-9) and the numerical gradient (rel_error < 1e-6); hypothesis sweeps of
window sizes, strides and non-square inputs, including the ones that must raise."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.gradcheck import numerical_gradient, rel_error
from cnnlab.nn import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward


def close(a, b):
    """Sweeps compare elementwise with rtol 1e-9 plus atol 1e-12: a random entry that happens to be
    near zero would make a max-relative-error check flaky (its 1e-16 rounding reads as large)."""
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


TOL_TORCH = 1e-9
TOL_NUM = 1e-6
POOLS = {
    "max": (max_pool2d, max_pool2d_backward, TF.max_pool2d),
    "avg": (avg_pool2d, avg_pool2d_backward, TF.avg_pool2d),
}


def distinct(rng, shape):
    """Values 0.01 apart in random order: no ties and no near-ties within the step h = 1e-5,
    so the max of every window is unambiguous for both torch and the numerical gradient."""
    return rng.permutation(np.arange(np.prod(shape)) * 0.01).reshape(shape) - 1.0


def torch_pool(kind, x, F, S, dout):
    xt = torch.tensor(x, requires_grad=True)
    out = POOLS[kind][2](xt, F, S)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


@st.composite
def pool_case(draw):
    F, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    Ho, Wo = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (N, C, (Ho - 1) * S + F, (Wo - 1) * S + F)
    return F, S, shape, (N, C, Ho, Wo), np.random.default_rng(draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    "shape, F, S",
    [((2, 3, 8, 8), 2, 2), ((2, 3, 7, 7), 3, 2), ((1, 2, 6, 10), 2, 2), ((2, 2, 7, 7), 3, 1),
     ((1, 1, 5, 5), 1, 1), ((1, 2, 8, 8), 2, 3), ((2, 2, 4, 6), 4, 2)],
)
def test_forward_backward_match_torch_and_numerical(kind, shape, F, S):
    fwd, bwd, _ = POOLS[kind]
    rng = np.random.default_rng(0)
    x = distinct(rng, shape)
    out = fwd(x, F, S)
    dout = rng.normal(size=out.shape)
    ref, dx_t = torch_pool(kind, x, F, S, dout)
    assert out.shape == ref.shape
    assert rel_error(out, ref) < TOL_TORCH
    dx = bwd(dout, x, F, S)
    assert rel_error(dx, dx_t) < TOL_TORCH
    assert rel_error(dx, numerical_gradient(lambda v: fwd(v, F, S), x, dout)) < TOL_NUM


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=30, deadline=None)
@given(case=pool_case())
def test_sweep_matches_torch(kind, case):
    F, S, shape, out_shape, rng = case
    fwd, bwd, _ = POOLS[kind]
    x = distinct(rng, shape)
    dout = rng.normal(size=out_shape)
    ref, dx_t = torch_pool(kind, x, F, S, dout)
    out = fwd(x, F, S)
    assert out.shape == out_shape
    close(out, ref)
    close(bwd(dout, x, F, S), dx_t)


@settings(max_examples=30, deadline=None)
@given(case=pool_case(), ties=st.booleans())
def test_sweep_saved_indices_are_torchs_and_give_the_same_gradient(case, ties):
    """return_indices gives PyTorch's indices (flat h * W + w, first maximum on ties), and the
    backward pass through them equals autograd's and the backward pass without them."""
    F, S, shape, out_shape, rng = case
    x = rng.integers(0, 3, size=shape).astype(float) if ties else distinct(rng, shape)
    dout = rng.normal(size=out_shape)
    xt = torch.tensor(x, requires_grad=True)
    out_t, idx_t = TF.max_pool2d(xt, F, S, return_indices=True)
    out_t.backward(torch.tensor(dout))
    out, idx = max_pool2d(x, F, S, return_indices=True)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    np.testing.assert_array_equal(idx, idx_t.numpy())
    assert idx.dtype == np.int64
    dx = max_pool2d_backward(dout, x, F, S, indices=idx)
    close(dx, xt.grad.numpy())
    close(dx, max_pool2d_backward(dout, x, F, S))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saved_indices_point_at_a_nan_like_torch(dtype):
    x = np.arange(16.0, dtype=dtype).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan          # two NaNs in the first window
    out, idx = max_pool2d(x, 2, 2, return_indices=True)
    out_t, idx_t = TF.max_pool2d(torch.tensor(x), 2, 2, return_indices=True)
    np.testing.assert_array_equal(out, out_t.numpy())   # NaN where torch has NaN
    np.testing.assert_array_equal(idx, idx_t.numpy())
    assert np.isnan(x.reshape(-1)[idx[0, 0, 0, 0]])


def test_saved_indices_of_an_integer_input():
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])[None, None]
    out, idx = max_pool2d(x, 2, 2, return_indices=True)
    np.testing.assert_array_equal(x.reshape(-1)[idx.reshape(-1)], out.reshape(-1))
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [8, 15]])


@pytest.mark.parametrize(
    "indices, match",
    [
        (np.zeros((1, 1, 3, 3), dtype=np.int64), r"shape of the pooled output .* \(1, 1, 2, 2\)"),
        (np.zeros((1, 1, 2, 2)), "must be integers"),
        (np.full((1, 1, 2, 2), 16), r"in \[0, H\*W\) = \[0, 16\)"),
        (np.full((1, 1, 2, 2), -1), r"got values in \[-1, -1\]"),
    ],
)
def test_bad_indices_raise_a_value_error(indices, match):
    with pytest.raises(ValueError, match=match):
        max_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 4, 4)), 2, 2, indices=indices)


@settings(max_examples=30, deadline=None)
@given(H=st.integers(1, 10), W=st.integers(1, 10), F=st.integers(1, 5), S=st.integers(1, 4))
def test_sweep_raises_exactly_when_the_window_does_not_fit(H, W, F, S):
    x = distinct(np.random.default_rng(0), (1, 1, H, W))
    fits = all(n >= F and (n - F) % S == 0 for n in (H, W))
    for kind in ("max", "avg"):
        fwd = POOLS[kind][0]
        if fits:
            close(fwd(x, F, S), POOLS[kind][2](torch.tensor(x), F, S).numpy())
        else:
            with pytest.raises(ValueError, match=f"{F}x{F} pooling window"):
                fwd(x, F, S)


def test_max_pool_ties_go_to_the_first_maximum_like_torch():
    x = np.ones((1, 1, 4, 4))
    dout = np.arange(4.0).reshape(1, 1, 2, 2) + 1
    _, dx_t = torch_pool("max", x, 2, 2, dout)
    dx = max_pool2d_backward(dout, x)
    np.testing.assert_array_equal(dx, dx_t)
    assert dx.sum() == dout.sum()   # each window's gradient goes to exactly one input


@pytest.mark.parametrize("F, S", [(2, 2), (3, 1)], ids=["tiling", "overlapping"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, F, S):
    x = np.random.default_rng(3).normal(size=(2, 2, 5 if S == 1 else 4, 5 if S == 1 else 4))
    x = x.astype(dtype)
    for fwd, bwd, _ in POOLS.values():
        out = fwd(x, F, S)
        assert out.dtype == dtype
        assert bwd(np.ones_like(out), x, F, S).dtype == dtype
    out, idx = max_pool2d(x, F, S, return_indices=True)
    assert out.dtype == dtype
    assert max_pool2d_backward(np.ones_like(out), x, F, S, indices=idx).dtype == dtype


def test_max_pool_keeps_integers_and_avg_pool_averages_them_in_float64():
    x = np.arange(16).reshape(1, 1, 4, 4)
    assert max_pool2d(x).dtype == x.dtype
    assert avg_pool2d(x).dtype == np.float64
    assert avg_pool2d(x)[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: max_pool2d(np.ones((4, 4)), 2, 2), r"x must be 4-D \(N, C, H, W\), got 2-D"),
        (lambda: avg_pool2d(np.ones((1, 1, 7, 7)), 2, 2),
         r"a 2x2 pooling window does not fit a 7x7 input with stride 2: \(7 - 2\) / 2 \+ 1 = 3.5"),
        (lambda: max_pool2d(np.ones((1, 1, 3, 3)), 4, 1),
         "4x4 pooling window is larger than a 3x3"),
        (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 2, 0), "stride S must be a whole number >= 1"),
        (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 0, 1), "size .* must be a whole number >= 1"),
        (lambda: max_pool2d_backward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 4, 4))),
         r"dout must have shape \(1, 1, 2, 2\)"),
        (lambda: avg_pool2d_backward(np.ones((1, 2, 2, 2)), np.ones((1, 1, 4, 4))),
         r"dout must have shape \(1, 1, 2, 2\)"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_rule(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# Written against survivors of a mutation run over cnnlab/nn/pool.py (docs/mutants.md).


def test_a_tie_between_the_last_two_offsets_goes_to_the_first():
    x = np.array([[0.0, 0.0], [5.0, 5.0]])[None, None]      # maxima at offsets (1, 0) and (1, 1)
    _, dx_t = torch_pool("max", x, 2, 2, np.ones((1, 1, 1, 1)))
    for dx in (max_pool2d_backward(np.ones((1, 1, 1, 1)), x),
               max_pool2d_backward(np.ones((1, 1, 1, 1)), x,
                                   indices=max_pool2d(x, return_indices=True)[1])):
        np.testing.assert_array_equal(dx, dx_t)
        np.testing.assert_array_equal(dx[0, 0], [[0.0, 0.0], [1.0, 0.0]])


def test_a_window_of_more_than_256_offsets_points_past_the_256th():
    """17x17 = 289 offsets: they no longer fit a uint8."""
    x = np.zeros((1, 1, 17, 17))
    x[0, 0, 16, 15] = 1.0                                      # offset 16 * 17 + 15 = 287
    _, idx = max_pool2d(x, 17, 17, return_indices=True)
    assert idx.reshape(-1).tolist() == [287]



@pytest.mark.parametrize("wide", ["dout", "x"])
def test_the_backward_pass_takes_the_wider_dtype_of_dout_and_x(wide):
    x = np.ones((1, 1, 4, 4), np.float64 if wide == "x" else np.float32)
    dout = np.ones((1, 1, 2, 2), np.float64 if wide == "dout" else np.float32)
    for bwd in (max_pool2d_backward, avg_pool2d_backward):
        assert bwd(dout, x).dtype == np.float64



@pytest.mark.parametrize(
    "call, text",
    [
        (lambda: max_pool2d("abc"), "x must be a numeric array, got dtype <U3"),
        (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 0, 2),
         "size (the pooling window F) must be a whole number >= 1, got 0"),
        (lambda: max_pool2d_backward("abc", np.ones((1, 1, 4, 4))),
         "dout must be a numeric array, got dtype <U3"),
        (lambda: max_pool2d_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4))),
         "dout must have shape (1, 1, 2, 2) (N, C, H', W'), got (1, 1, 3, 3)"),
    ],
)
def test_an_error_names_the_argument_and_the_rule_in_full(call, text):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == text
