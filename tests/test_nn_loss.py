"""softmax_cross_entropy against torch.nn.functional.cross_entropy and autograd (float64), and the
numerical gradient."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.gradcheck import numerical_gradient, rel_error
from cnnlab.nn import softmax_cross_entropy


def close(a, b):
    """Sweeps compare elementwise with rtol 1e-9 plus atol 1e-12: a random entry that happens to be
    near zero would make a max-relative-error check flaky (its 1e-16 rounding reads as large)."""
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 6), M=st.integers(1, 8), scale=st.sampled_from([0.1, 1.0, 100.0, 1000.0]),
       seed=st.integers(0, 2**16))
def test_matches_torch_cross_entropy_and_autograd(N, M, scale, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(N, M)) * scale      # scale 1000: exp(scores) overflows float64
    y = rng.integers(0, M, size=N)
    st_ = torch.tensor(scores, requires_grad=True)
    loss_t = TF.cross_entropy(st_, torch.tensor(y))
    loss_t.backward()
    loss, dscores = softmax_cross_entropy(scores, y)
    assert isinstance(loss, float)
    assert abs(loss - loss_t.item()) <= 1e-10 * max(1.0, abs(loss))
    close(dscores, st_.grad.numpy())


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.float64, 1000.0), (np.float32, 100.0)],   # exp(710) and exp(89) overflow these dtypes
)
def test_large_scores_stay_finite_and_exact(dtype, scale):
    """Softmax must subtract each row's maximum before exp: without it these scores overflow to
    inf and the loss and gradient become NaN."""
    rng = np.random.default_rng(5)
    scores = (rng.normal(size=(4, 6)) * scale).astype(dtype)
    scores[:, 0] = scale        # at least one score beyond exp's range in every row
    y = np.array([0, 1, 2, 3])
    loss, dscores = softmax_cross_entropy(scores, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    st_ = torch.tensor(scores.astype(np.float64), requires_grad=True)
    loss_t = TF.cross_entropy(st_, torch.tensor(y))
    loss_t.backward()
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert abs(loss - loss_t.item()) <= rtol * max(1.0, abs(loss_t.item()))
    np.testing.assert_allclose(dscores, st_.grad.numpy(), rtol=rtol, atol=rtol)


def test_gradient_matches_numerical_gradient():
    rng = np.random.default_rng(0)
    scores, y = rng.normal(size=(4, 5)), np.array([0, 4, 2, 2])
    _, dscores = softmax_cross_entropy(scores, y)
    num = numerical_gradient(lambda s: np.array(softmax_cross_entropy(s, y)[0]), scores, 1.0)
    assert rel_error(dscores, num) < 1e-7


def test_uniform_scores_give_log_of_the_number_of_classes():
    loss, _ = softmax_cross_entropy(np.zeros((3, 10)), np.array([0, 5, 9]))
    assert abs(loss - np.log(10)) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    assert softmax_cross_entropy(np.zeros((2, 3), dtype=dtype), [0, 1])[1].dtype == dtype


@pytest.mark.parametrize(
    "scores, y, match",
    [
        (np.zeros((2, 3)), [0, 3], r"y\[1\] = 3 is not a class index in \[0, M\) = \[0, 3\)"),
        (np.zeros((2, 3)), [0, -1], r"y\[1\] = -1 is not a class index"),
        (np.zeros((2, 3)), [0, 1, 2], r"y must have shape \(N,\) = \(2,\)"),
        (np.zeros((2, 3)), [0.0, 1.0], "integer class indices"),
        (np.zeros(3), [0], r"scores must be 2-D \(N, M\)"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_rule(scores, y, match):
    with pytest.raises(ValueError, match=match):
        softmax_cross_entropy(scores, y)
