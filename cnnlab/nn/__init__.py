"""NumPy reference layers of the course, one concept per module.

Shapes everywhere: images ``x: (N, C, H, W)``, filters ``w: (K, C, F, F)``, biases ``b: (K,)``,
outputs ``(N, K, H', W')`` with ``H' = (H + 2P - F) / S + 1``. float32 and float64 are both kept.

These are written to be read. :mod:`cnnlab.nn.fast` holds the same convolution tuned for speed
(``fast.conv2d``, ``fast.conv2d_backward``), which the NumPy CNN and the benchmarks use.
"""

from cnnlab.nn import fast
from cnnlab.nn.activations import relu, relu_backward
from cnnlab.nn.conv import conv2d, conv2d_backward, conv2d_naive
from cnnlab.nn.im2col import col2im, im2col
from cnnlab.nn.linear import linear, linear_backward
from cnnlab.nn.loss import softmax_cross_entropy
from cnnlab.nn.pad import zero_pad
from cnnlab.nn.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "fast",
    "zero_pad",
    "conv2d_naive",
    "conv2d",
    "conv2d_backward",
    "im2col",
    "col2im",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu",
    "relu_backward",
    "linear",
    "linear_backward",
    "softmax_cross_entropy",
]
