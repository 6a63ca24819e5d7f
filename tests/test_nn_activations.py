"""relu and relu_backward against torch.relu and autograd, and the numerical gradient."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from cnnlab.gradcheck import numerical_gradient, rel_error
from cnnlab.nn import relu, relu_backward


@settings(max_examples=30, deadline=None)
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=5), seed=st.integers(0, 2**16))
def test_relu_matches_torch_forward_and_autograd(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    x[rng.random(shape) < 0.1] = 0.0            # exact zeros: the gradient there is 0, as in torch
    dout = rng.normal(size=shape)
    xt = torch.tensor(x, requires_grad=True)
    out_t = torch.relu(xt)
    out_t.backward(torch.tensor(dout))
    np.testing.assert_array_equal(relu(x), out_t.detach().numpy())
    np.testing.assert_array_equal(relu_backward(dout, x), xt.grad.numpy())


def test_relu_backward_matches_numerical_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5                   # keep away from the kink at 0 (step h = 1e-5)
    dout = rng.normal(size=x.shape)
    assert rel_error(relu_backward(dout, x), numerical_gradient(relu, x, dout)) < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = np.array([-1.0, 0.0, 2.0], dtype=dtype)
    assert relu(x).dtype == dtype
    assert relu_backward(np.ones(3, dtype=dtype), x).dtype == dtype


def test_dout_of_another_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"dout must have shape \(3,\)"):
        relu_backward(np.ones(4), np.ones(3))
