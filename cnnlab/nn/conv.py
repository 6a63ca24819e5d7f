"""The convolution layer: forward (naive loops and im2col + one matrix product) and backward.

Shapes (the slides' letters):
    x: (N, C, H, W)   w: (K, C, F, F)   b: (K,)   out: (N, K, H', W')
    H' = (H + 2P - F) / S + 1,   W' = (W + 2P - F) / S + 1
"""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks
from cnnlab.nn._workspace import scratch
from cnnlab.nn.im2col import _col2im_T, _im2col_T
from cnnlab.nn.pad import zero_pad


def _prepare(x, w, b, stride, pad):
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


def conv2d_naive(x, w, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Convolution with explicit loops: the version a student writes first.

    Each output value is one dot product of a filter with the FxFxC window under it, plus the bias:
    ``out[n, k, i, j] = sum(x_padded[n, :, i*S : i*S + F, j*S : j*S + F] * w[k]) + b[k]``.

    Args:
        x: ``(N, C, H, W)`` images.
        w: ``(K, C, F, F)`` filters (they extend the full depth C of the input).
        b: ``(K,)`` biases.
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
    x, w, b, S, P, Ho, Wo = _prepare(x, w, b, stride, pad)
    N = x.shape[0]
    K, _, F, _ = w.shape
    xp = zero_pad(x, P)
    out = np.empty((N, K, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * S : i * S + F, j * S : j * S + F]  # (C, F, F)
                    out[n, k, i, j] = np.sum(window * w[k]) + b[k]
    return out


def conv2d(x, w, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Convolution, vectorised: im2col, then one matrix product for the whole batch.

    Same arguments, result, dtype and errors as :func:`conv2d_naive`:
    ``x: (N, C, H, W)``, ``w: (K, C, F, F)``, ``b: (K,)`` -> ``out: (N, K, H', W')`` with
    ``H' = (H + 2P - F) / S + 1``. The columns are those of :func:`~cnnlab.nn.im2col` with the
    batch folded in, ``(C*F*F, N*H'*W')``, so that all N images share one large product.

    >>> x = np.random.default_rng(0).normal(size=(2, 3, 7, 7))
    >>> w = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
    >>> out = conv2d(x, w, np.zeros(4), stride=2, pad=1)
    >>> out.shape, bool(np.allclose(out, conv2d_naive(x, w, np.zeros(4), stride=2, pad=1)))
    ((2, 4, 4, 4), True)
    """
    x, w, b, S, P, Ho, Wo = _prepare(x, w, b, stride, pad)
    N = x.shape[0]
    K, C, F, _ = w.shape
    cols = _im2col_T(x, F, S, P, Ho, Wo)           # (C*F*F, N*H'*W')
    prod = scratch("prod", (K, N * Ho * Wo), x.dtype)
    np.matmul(w.reshape(K, C * F * F), cols, out=prod)  # (K, C*F*F) @ (C*F*F, N*H'*W')
    out = np.empty((N, K, Ho, Wo), dtype=x.dtype)
    # (K, N*H'*W') -> (K, N, H', W') -> (N, K, H', W'), PyTorch's layout, plus the bias
    np.add(prod.reshape(K, N, Ho, Wo).transpose(1, 0, 2, 3), b[:, None, None], out=out)
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

    >>> x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> dx[0, 0], db
    (array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]]), array([4.]))
    """
    x, w, _, S, P, Ho, Wo = _prepare(x, w, None, stride, pad)
    dout = _checks.array("dout", dout)
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    _checks.same_shape("dout", dout, "N, K, H', W'", (N, K, Ho, Wo))
    dt = _checks.float_dtype(dout, x)
    x, w = x.astype(dt, copy=False), w.astype(dt, copy=False)

    # (N, K, H', W') -> (K, N, H', W') -> (K, N*H'*W'): the columns' order
    dout_T = scratch("prod", (K, N, Ho, Wo), dt)
    np.copyto(dout_T, dout.transpose(1, 0, 2, 3))
    dout_T = dout_T.reshape(K, N * Ho * Wo)
    db = dout_T.sum(axis=1)                        # (K,)
    cols = _im2col_T(x, F, S, P, Ho, Wo)           # (C*F*F, N*H'*W')
    # dw^T = cols @ dout_T^T: (C*F*F, N*H'*W') @ (N*H'*W', K) -> (C*F*F, K), BLAS's faster order
    dw = np.ascontiguousarray((cols @ dout_T.T).T).reshape(K, C, F, F)
    dcols = scratch("cols", (C * F * F, N * Ho * Wo), dt)   # cols no longer needed: reuse
    np.matmul(w.reshape(K, C * F * F).T, dout_T, out=dcols)  # (C*F*F, K) @ (K, N*H'*W')
    dx = _col2im_T(dcols, (N, C, H, W), F, S, P, Ho, Wo)
    return dx, dw, db
