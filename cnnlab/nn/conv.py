"""The convolution layer, written to be read: naive loops, then im2col + one matrix product, and
the backward pass through im2col/col2im.

Shapes (the slides' letters):
    x: (N, C, H, W)   w: (K, C, F, F)   b: (K,) or None   out: (N, K, H', W')
    H' = (H + 2P - F) / S + 1,   W' = (W + 2P - F) / S + 1

The tuned version of the same layer (images split between threads, reused buffers) is
:mod:`cnnlab.nn.fast`; tests check that both give the same numbers.
"""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks
from cnnlab.nn.im2col import col2im, im2col
from cnnlab.nn.pad import zero_pad


def prepare(x, w, b, stride, pad):
    """Check the arguments of a convolution; return them in their common float dtype.

    Returns ``x, w, b, S, P, Ho, Wo`` (``b`` stays None when it is None).
    """
    x, w, b = _checks.conv_args(x, w, b)
    S, P = _checks.stride_pad(stride, pad)
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    Ho, Wo = _checks.window_output(H, W, F, S, P)
    dt = _checks.float_dtype(x, w) if b is None else _checks.float_dtype(x, w, b)
    x = x.astype(dt, copy=False)
    w = w.astype(dt, copy=False)
    if b is not None:
        b = b.astype(dt, copy=False)
    return x, w, b, S, P, Ho, Wo


def prepare_backward(dout, x, w, stride, pad):
    """Check the arguments of a convolution's backward pass; ``dout`` must be ``(N, K, H', W')``.

    Returns ``dout, x, w, S, P, Ho, Wo``, all three arrays in their common float dtype.
    """
    x, w, _, S, P, Ho, Wo = prepare(x, w, None, stride, pad)
    dout = _checks.array("dout", dout)
    _checks.same_shape("dout", dout, "N, K, H', W'", (x.shape[0], w.shape[0], Ho, Wo))
    dt = _checks.float_dtype(dout, x)
    return (dout.astype(dt, copy=False), x.astype(dt, copy=False), w.astype(dt, copy=False),
            S, P, Ho, Wo)


def conv2d_naive(x, w, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Convolution with explicit loops: the version a student writes first.

    Each output value is one dot product of a filter with the FxFxC window under it, plus the bias:
    ``out[n, k, i, j] = sum(x_padded[n, :, i*S : i*S + F, j*S : j*S + F] * w[k]) + b[k]``.

    Args:
        x: ``(N, C, H, W)`` images.
        w: ``(K, C, F, F)`` filters (they extend the full depth C of the input).
        b: ``(K,)`` biases, or None for no bias (PyTorch's ``bias=False``).
        stride: ``S`` >= 1. Default 1.
        pad: zero padding ``P`` >= 0. Default 0.

    Returns:
        out: ``(N, K, H', W')`` with ``H' = (H + 2P - F) / S + 1``; dtype of the inputs (float32
        stays float32, float64 stays float64).

    Raises:
        ValueError: wrong number of dimensions, channel mismatch, stride < 1, pad < 0, a filter
            larger than the padded input, or one that does not fit (``H'`` not a whole number).

    >>> conv2d_naive(np.ones((1, 3, 32, 32)), np.ones((6, 3, 5, 5)), np.zeros(6)).shape
    (1, 6, 28, 28)
    """
    x, w, b, S, P, Ho, Wo = prepare(x, w, b, stride, pad)
    N = x.shape[0]
    K, _, F, _ = w.shape
    xp = zero_pad(x, P)
    out = np.empty((N, K, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * S : i * S + F, j * S : j * S + F]  # (C, F, F)
                    out[n, k, i, j] = np.sum(window * w[k]) + (0 if b is None else b[k])
    return out


def conv2d(x, w, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Convolution, vectorised: every window becomes a column (im2col), then one matrix product.

    Same arguments, result, dtype and errors as :func:`conv2d_naive`:
    ``x: (N, C, H, W)``, ``w: (K, C, F, F)``, ``b: (K,)`` or None -> ``out: (N, K, H', W')`` with
    ``H' = (H + 2P - F) / S + 1``.

    >>> x = np.random.default_rng(0).normal(size=(2, 3, 7, 7))
    >>> w = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
    >>> out = conv2d(x, w, np.zeros(4), stride=2, pad=1)
    >>> out.shape, bool(np.allclose(out, conv2d_naive(x, w, np.zeros(4), stride=2, pad=1)))
    ((2, 4, 4, 4), True)
    """
    x, w, b, S, P, Ho, Wo = prepare(x, w, b, stride, pad)
    N = x.shape[0]
    K, _, F, _ = w.shape
    cols = im2col(x, F, S, P)                      # (N, C*F*F, H'*W')
    out = w.reshape(K, -1) @ cols                  # (K, C*F*F) @ (N, C*F*F, H'*W') -> (N, K, H'*W')
    out = out.reshape(N, K, Ho, Wo)
    if b is not None:
        out += b[:, None, None]                    # one bias per filter, (K, 1, 1) broadcast
    return out


def conv2d_backward(dout, x, w, stride: int = 1, pad: int = 0):
    """Gradients of a convolution, given the upstream gradient ``dout = dL/dout``.

    Args:
        dout: ``(N, K, H', W')``.
        x: ``(N, C, H, W)`` the forward input.
        w: ``(K, C, F, F)`` the forward filters.
        stride: ``S``. pad: ``P`` (as in the forward pass).

    Returns:
        ``(dx, dw, db)`` of shapes ``(N, C, H, W)``, ``(K, C, F, F)``, ``(K,)``:
        ``db = dout summed over N, H', W'``; ``dw = dout @ cols^T`` with ``cols = im2col(x)``
        (summed over the images); ``dx = col2im(w^T @ dout)``. Same dtype as the forward result.
        (Without a bias in the forward pass, ignore ``db``.)

    >>> x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> dx[0, 0], db
    (array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]]), array([4.]))
    """
    dout, x, w, S, P, Ho, Wo = prepare_backward(dout, x, w, stride, pad)
    N = x.shape[0]
    K, _, F, _ = w.shape
    dout = dout.reshape(N, K, Ho * Wo)             # (N, K, H'*W')
    db = dout.sum(axis=(0, 2))                     # (K,)
    cols = im2col(x, F, S, P)                      # (N, C*F*F, H'*W')
    # (N, K, H'*W') @ (N, H'*W', C*F*F) -> (N, K, C*F*F), summed over the images
    dw = (dout @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = w.reshape(K, -1).T @ dout              # (C*F*F, K) @ (N, K, H'*W') -> (N, C*F*F, H'*W')
    dx = col2im(dcols, x.shape, F, S, P)           # (N, C, H, W), overlapping windows summed
    return dx, dw, db
