"""Every numeric example of the lecture (../shared/slides.md), one test each, computed by cnnlab."""

import numpy as np
import pytest

from cnnlab.nn import conv2d, conv2d_naive, linear, max_pool2d
from cnnlab.shapes import conv_output_size, conv_param_count, fc_param_count, same_padding

RNG = np.random.default_rng(2024)


def test_7x7_input_3x3_filter_stride_1_gives_5x5():
    assert conv_output_size(7, 3, stride=1) == 5
    out = conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), np.zeros(1), stride=1)
    assert out.shape == (1, 1, 5, 5)


def test_7x7_input_3x3_filter_stride_2_gives_3x3():
    assert conv_output_size(7, 3, stride=2) == 3
    out = conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), np.zeros(1), stride=2)
    assert out.shape == (1, 1, 3, 3)


def test_7x7_input_3x3_filter_stride_3_does_not_fit():
    msg = r"a 3x3 filter does not fit a 7x7 input with stride 3: \(7 - 3\) / 3 \+ 1 = 2.33"
    with pytest.raises(ValueError, match=msg):
        conv_output_size(7, 3, stride=3)
    for conv in (conv2d, conv2d_naive):
        with pytest.raises(ValueError, match=msg):
            conv(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), np.zeros(1), stride=3)


def test_7x7_input_3x3_filter_stride_1_pad_1_gives_7x7():
    assert conv_output_size(7, 3, stride=1, pad=1) == 7
    out = conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), np.zeros(1), 1, 1)
    assert out.shape == (1, 1, 7, 7)
    assert out[0, 0, 0, 0] == 4 and out[0, 0, 3, 3] == 9   # a corner sees 4 pixels, the centre 9


@pytest.mark.parametrize("f, p", [(3, 1), (5, 2), (7, 3)])
def test_zero_padding_F_minus_1_over_2_preserves_size(f, p):
    assert same_padding(f) == p
    out = conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, f, f)), np.zeros(1), 1, same_padding(f))
    assert out.shape == (1, 1, 7, 7)


def test_32x32x3_through_ten_5x5_filters_stride_1_pad_2_gives_32x32x10():
    x, w, b = RNG.normal(size=(1, 3, 32, 32)), RNG.normal(size=(10, 3, 5, 5)), np.zeros(10)
    assert conv2d(x, w, b, stride=1, pad=2).shape == (1, 10, 32, 32)
    assert conv_output_size(32, 5, stride=1, pad=2) == 32


def test_ten_5x5x3_filters_have_760_parameters():
    assert 5 * 5 * 3 + 1 == 76                         # each filter, +1 for its bias
    assert conv_param_count(5, 3, 10) == 760
    w, b = np.zeros((10, 3, 5, 5)), np.zeros(10)
    assert w.size + b.size == conv_param_count(5, 3, 10)


def test_a_5x5x3_filter_on_32x32x3_gives_one_28x28_activation_map():
    x, w = RNG.normal(size=(1, 3, 32, 32)), RNG.normal(size=(1, 3, 5, 5))
    out = conv2d(x, w, np.zeros(1))
    assert out.shape == (1, 1, 28, 28)
    # one number = a 5*5*3 = 75-dimensional dot product + bias
    assert np.isclose(out[0, 0, 0, 0], np.sum(x[0, :, :5, :5] * w[0]))


def test_six_5x5x3_filters_on_32x32x3_give_28x28x6():
    x, w = RNG.normal(size=(1, 3, 32, 32)), RNG.normal(size=(6, 3, 5, 5))
    out = conv2d(x, w, np.zeros(6))
    assert out.shape == (1, 6, 28, 28)                 # the 6 maps stacked: a "new image"
    for k in range(6):                                 # each map is its own filter's
        np.testing.assert_allclose(out[:, k : k + 1], conv2d(x, w[k : k + 1], np.zeros(1)))


def test_filters_extend_the_full_depth_of_the_input():
    with pytest.raises(ValueError, match="channel mismatch: x has C = 3"):
        conv2d(np.ones((1, 3, 32, 32)), np.ones((6, 1, 5, 5)), np.zeros(6))


def test_max_pool_2x2_stride_2_example():
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    out = max_pool2d(x[None, None], size=2, stride=2)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [3, 4]])


def test_1x1_conv_32_filters_on_56x56x64_gives_56x56x32_and_is_a_per_pixel_matrix_product():
    x, w, b = RNG.normal(size=(2, 64, 56, 56)), RNG.normal(size=(32, 64, 1, 1)), RNG.normal(size=32)
    out = conv2d(x, w, b)
    assert out.shape == (2, 32, 56, 56)
    # every pixel: a 64-dimensional dot product with each of the 32 filters
    per_pixel = np.einsum("kc,nchw->nkhw", w[:, :, 0, 0], x) + b[:, None, None]
    np.testing.assert_allclose(out, per_pixel, rtol=1e-10, atol=1e-10)
    pixel = x[1, :, 10, 20]                             # (64,)
    np.testing.assert_allclose(out[1, :, 10, 20], w[:, :, 0, 0] @ pixel + b, rtol=1e-10)


def test_fc_layer_stretches_32x32x3_to_3072_and_gives_10_scores():
    x = RNG.normal(size=(1, 3, 32, 32))
    w, b = RNG.normal(size=(10, 3072)), RNG.normal(size=10)
    out = linear(x, w, b)
    assert out.shape == (1, 10)
    np.testing.assert_allclose(out[0], w @ x.reshape(3072) + b)
    assert fc_param_count(3072, 10) == 10 * 3072 + 10


def test_common_settings_from_the_summary_keep_or_halve_the_size():
    assert conv_output_size(32, 3, 1, 1) == 32        # F = 3, S = 1, P = 1
    assert conv_output_size(32, 5, 1, 2) == 32        # F = 5, S = 1, P = 2
    assert conv_output_size(32, 1, 1, 0) == 32        # F = 1, S = 1, P = 0
    assert conv_output_size(33, 5, 2, 2) == 17        # F = 5, S = 2, P = "whatever fits"
