"""linear and linear_backward against torch.nn.functional.linear and autograd (float64,
rel_error < 1e-9) and the numerical gradient (rel_error < 1e-6)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.gradcheck import numerical_gradient, rel_error
from cnnlab.nn import linear, linear_backward


def close(a, b):
    """Sweeps compare elementwise with rtol 1e-9 plus atol 1e-12: a random entry that happens to be
    near zero would make a max-relative-error check flaky (its 1e-16 rounding reads as large)."""
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 4), rest=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    M=st.integers(1, 5), seed=st.integers(0, 2**16),
)
def test_matches_torch_forward_and_autograd(N, rest, M, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, *rest))
    D = int(np.prod(rest))
    w, b = rng.normal(size=(M, D)), rng.normal(size=M)
    dout = rng.normal(size=(N, M))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = TF.linear(xt.reshape(N, D), wt, bt)
    out_t.backward(torch.tensor(dout))
    close(linear(x, w, b), out_t.detach().numpy())
    dx, dw, db = linear_backward(dout, x, w)
    assert dx.shape == x.shape
    close(dx, xt.grad.numpy())
    close(dw, wt.grad.numpy())
    close(db, bt.grad.numpy())


def test_backward_matches_numerical_gradient():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 2, 2, 2)), rng.normal(size=(5, 8)), rng.normal(size=5)
    dout = rng.normal(size=(3, 5))
    dx, dw, db = linear_backward(dout, x, w)
    assert rel_error(dx, numerical_gradient(lambda v: linear(v, w, b), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: linear(x, v, b), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: linear(x, w, v), b, dout)) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x, w, b = (np.ones(s, dtype=dtype) for s in [(2, 3), (4, 3), (4,)])
    assert linear(x, w, b).dtype == dtype
    assert [g.dtype for g in linear_backward(np.ones((2, 4), dtype=dtype), x, w)] == [dtype] * 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: linear(np.ones((2, 3, 4)), np.ones((5, 13)), np.ones(5)),
         r"flattens to \(N, D\) = \(2, 12\) .* expects D = 13"),
        (lambda: linear(np.ones((2, 3)), np.ones(3), np.ones(1)), r"w must be 2-D \(M, D\)"),
        (lambda: linear(np.ones((2, 3)), np.ones((4, 3)), np.ones(3)), r"b must have shape \(4,\)"),
        (lambda: linear_backward(np.ones((2, 3)), np.ones((2, 3)), np.ones((4, 3))),
         r"dout must have shape \(2, 4\)"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_rule(call, match):
    with pytest.raises(ValueError, match=match):
        call()
