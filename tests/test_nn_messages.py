"""The NumPy layers' errors name the argument at fault and the rule, and their results take the
widest float dtype of their inputs (PyTorch's promotion), whichever input is the wide one.

Written against survivors of a mutation run over cnnlab/nn (``make mutants``, docs/mutants.md):
an error naming no argument, or a backward pass that ignored one input's dtype, passed every
other test.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.nn import (
    col2im,
    conv2d,
    conv2d_backward,
    im2col,
    linear,
    linear_backward,
    relu,
    relu_backward,
    softmax_cross_entropy,
    zero_pad,
)

ONES = np.ones


ERRORS = [
    (linear, ("abc", ONES((4, 3)), ONES(4)), "x must be a numeric array, got dtype <U3"),
    (linear, (ONES((2, 3)), "abc", ONES(4)), "w must be a numeric array, got dtype <U3"),
    (linear, (ONES((2, 3)), ONES((4, 3)), "abc"), "b must be a numeric array, got dtype <U3"),
    (linear, (ONES((2, 3)), ONES((4, 3)), ONES(5)), "b must have shape (4,) (M,), got (5,)"),
    (linear, (np.float64(1.0), ONES((1, 1)), ONES(1)),
     "x must have a batch axis N, (N, ...), got a 0-D array array(1.)"),
    (linear_backward, ("abc", ONES((2, 3)), ONES((4, 3))),
     "dout must be a numeric array, got dtype <U3"),
    (linear_backward, (ONES((2, 5)), ONES((2, 3)), ONES((4, 3))),
     "dout must have shape (2, 4) (N, M), got (2, 5)"),
    (relu, ("abc",), "x must be a numeric array, got dtype <U3"),
    (relu_backward, ("abc", ONES(2)), "dout must be a numeric array, got dtype <U3"),
    (relu_backward, (ONES(2), "abc"), "x must be a numeric array, got dtype <U3"),
    (relu_backward, (ONES(3), ONES(2)), "dout must have shape (2,) (the shape of x), got (3,)"),
    (softmax_cross_entropy, ("abc", np.zeros(2, dtype=int)),
     "scores must be a numeric array, got dtype <U3"),
    (softmax_cross_entropy, (ONES((0, 3)), np.zeros(0, dtype=int)),
     "scores must hold at least one example, got N = 0"),
    (conv2d, ("abc", ONES((2, 3, 3, 3)), ONES(2)), "x must be a numeric array, got dtype <U3"),
    (conv2d, (ONES((1, 3, 7, 7)), "abc", ONES(2)), "w must be a numeric array, got dtype <U3"),
    (conv2d, (ONES((1, 3, 7, 7)), ONES((2, 3, 3, 3)), "abc"),
     "b must be a numeric array, got dtype <U3"),
    (conv2d, (ONES((1, 4, 7, 7)), ONES((2, 3, 3, 3)), ONES(2)),
     "channel mismatch: x has C = 4 channels (x.shape = (1, 4, 7, 7)) but the filters expect"
     " C = 3 (w.shape = (2, 3, 3, 3)); filters always extend the full depth of the input"),
    (conv2d, (ONES((1, 3, 7, 8)), ONES((2, 3, 3, 3)), ONES(2), 2, 0),
     "along the width W = 8: a 3x3 filter does not fit a 7x8 input with stride 2:"
     " (8 - 3) / 2 + 1 = 3.5 is not a whole number"),
    (conv2d, (ONES((1, 3, 8, 7)), ONES((2, 3, 3, 3)), ONES(2), 2, 0),
     "along the height H = 8: a 3x3 filter does not fit a 8x7 input with stride 2:"
     " (8 - 3) / 2 + 1 = 3.5 is not a whole number"),
    (conv2d, (ONES((1, 3, 7, 7)), ONES((0, 3, 3, 3)), None),
     "w: (K, C, F, F) must have no empty axis, got w.shape = (0, 3, 3, 3)"),
    (im2col, ("abc", 3), "x must be a numeric array, got dtype <U3"),
    (im2col, (ONES((3, 7, 7)), 3), "x must be 4-D (N, C, H, W), got 3-D shape (3, 7, 7)"),
    (im2col, (ONES((1, 3, 7, 7)), 0), "f (the filter size F) must be a whole number >= 1, got 0"),
    (zero_pad, ("abc", 1), "x must be a numeric array, got dtype <U3"),
    (conv2d_backward, ("abc", ONES((2, 3, 7, 7)), ONES((4, 3, 3, 3))),
     "dout must be a numeric array, got dtype <U3"),
    (conv2d_backward, (ONES((2, 4, 7, 7)), ONES((2, 3, 7, 7)), ONES((4, 3, 3, 3))),
     "dout must have shape (2, 4, 5, 5) (N, K, H', W'), got (2, 4, 7, 7)"),
    (col2im, ("abc", (2, 3, 4, 4), 3, 1, 1), "cols must be a numeric array, got dtype <U3"),
    (col2im, (ONES((2, 27, 16)), (2, 3, 4, 4), 0, 1, 1),
     "f (the filter size F) must be a whole number >= 1, got 0"),
]


@pytest.mark.parametrize("layer, args, text", ERRORS,
                         ids=[f"{e[0].__name__}: {e[2][:30]}" for e in ERRORS])
def test_an_error_names_the_argument_and_the_rule(layer, args, text):
    with pytest.raises(ValueError) as info:
        layer(*args)
    assert str(info.value) == text


def test_a_vector_of_scalars_is_a_batch_for_linear():
    """x (N,) is N examples of one feature each, as x (N, 1)."""
    x = np.arange(3.0)
    w, b = np.array([[2.0], [-1.0]]), np.array([0.5, 0.0])
    np.testing.assert_array_equal(linear(x, w, b), linear(x[:, None], w, b))


def _inputs(wide: int, n: int):
    """n float32 arrays for the layers below, number ``wide`` float64."""
    return [np.float64 if i == wide else np.float32 for i in range(n)]


@pytest.mark.parametrize("wide", range(3))
def test_linear_takes_the_widest_dtype_of_x_w_and_b(wide):
    dx, dw, db = _inputs(wide, 3)
    out = linear(ONES((2, 3), dx), ONES((4, 3), dw), ONES(4, db))
    assert out.dtype == np.float64


@pytest.mark.parametrize("wide", range(3))
def test_linear_backward_takes_the_widest_dtype_of_dout_x_and_w(wide):
    dd, dx, dw = _inputs(wide, 3)
    grads = linear_backward(ONES((2, 4), dd), ONES((2, 3), dx), ONES((4, 3), dw))
    assert [g.dtype for g in grads] == [np.float64] * 3


@pytest.mark.parametrize("wide", range(3))
def test_conv2d_takes_the_widest_dtype_of_x_w_and_b(wide):
    dx, dw, db = _inputs(wide, 3)
    out = conv2d(ONES((1, 2, 4, 4), dx), ONES((3, 2, 3, 3), dw), ONES(3, db))
    assert out.dtype == np.float64


def test_conv2d_in_float32_stays_float32_with_a_bias():
    out = conv2d(ONES((1, 2, 4, 4), np.float32), ONES((3, 2, 3, 3), np.float32),
                 ONES(3, np.float32))
    assert out.dtype == np.float32


@pytest.mark.parametrize("wide", range(3))
def test_conv2d_backward_takes_the_widest_dtype_of_dout_x_and_w(wide):
    dd, dx, dw = _inputs(wide, 3)
    grads = conv2d_backward(ONES((1, 3, 2, 2), dd), ONES((1, 2, 4, 4), dx), ONES((3, 2, 3, 3), dw))
    assert [g.dtype for g in grads] == [np.float64] * 3


@pytest.mark.parametrize("wide", range(2))
def test_relu_backward_takes_the_widest_dtype_of_dout_and_x(wide):
    dd, dx = _inputs(wide, 2)
    assert relu_backward(ONES(3, dd), ONES(3, dx)).dtype == np.float64


def test_col2im_of_integer_columns_sums_in_float64():
    x = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    cols = im2col(x, 3, 1, 1)                       # (2, 27, 16), integer like x
    assert cols.dtype.kind == "i"
    back = col2im(cols, x.shape, 3, 1, 1)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, col2im(cols.astype(np.float64), x.shape, 3, 1, 1))
