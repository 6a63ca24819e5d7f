"""Pooling layers: max and average over FxF windows of each activation map independently.

Shapes: ``x: (N, C, H, W) -> out: (N, C, H', W')`` with ``H' = (H - size) / stride + 1`` (no
padding). Like a filter, a pooling window that does not fit (``H'`` not a whole number) is a
ValueError.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnlab.nn import _checks


def _prepare(x, size, stride):
    x = _checks.array("x", x)
    _checks.ndim("x", x, 4, "(N, C, H, W)")
    F = _checks._whole("size (the pooling window F)", size, 1)
    S = _checks._whole("stride S", stride, 1)
    Ho, Wo = _checks.window_output(x.shape[2], x.shape[3], F, S, 0, window="pooling window")
    return x, F, S, Ho, Wo


def _windows(x: np.ndarray, F: int, S: int, Ho: int, Wo: int) -> np.ndarray:
    """Read-only view ``(N, C, H', W', F, F)``, no copy.

    ``[n, c, i, j, a, b]`` is ``x[n, c, i*S + a, j*S + b]``.
    """
    N, C = x.shape[:2]
    sN, sC, sH, sW = x.strides
    return as_strided(
        x, shape=(N, C, Ho, Wo, F, F), strides=(sN, sC, S * sH, S * sW, sH, sW), writeable=False
    )


def _spread(dx: np.ndarray, blocks, F: int, S: int, Ho: int, Wo: int) -> None:
    """``dx[:, :, i*S + a, j*S + b] += blocks(a, b)[:, :, i, j]`` for every window offset (a, b)."""
    for a in range(F):
        for c in range(F):
            dx[:, :, a : a + S * (Ho - 1) + 1 : S, c : c + S * (Wo - 1) + 1 : S] += blocks(a, c)


def max_pool2d(x, size: int = 2, stride: int = 2) -> np.ndarray:
    """Max pooling: the largest value of each ``size x size`` window, every channel on its own.

    Args:
        x: ``(N, C, H, W)``.
        size: window side ``F``. Default 2.
        stride: ``S``. Default 2.

    Returns:
        ``(N, C, H', W')`` with ``H' = (H - F) / S + 1``, same dtype as ``x``.

    >>> x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    >>> max_pool2d(x[None, None])[0, 0]
    array([[6, 8],
           [3, 4]])
    """
    x, F, S, Ho, Wo = _prepare(x, size, stride)
    N, C = x.shape[:2]
    if F == S:
        # non-overlapping windows: (N, C, H'*F, W'*F) -> (N, C, H', F, W', F), max over the F axes
        return x.reshape(N, C, Ho, F, Wo, F).max(axis=(3, 5))
    return _windows(x, F, S, Ho, Wo).max(axis=(4, 5))


def max_pool2d_backward(dout, x, size: int = 2, stride: int = 2) -> np.ndarray:
    """Gradient of max pooling: each window's upstream gradient goes to its maximum.

    Ties go to the first maximum in row-major order, as in PyTorch.

    Args:
        dout: ``(N, C, H', W')``. x: ``(N, C, H, W)`` the forward input. size, stride: as forward.

    Returns:
        dx: ``(N, C, H, W)``, float dtype of ``dout`` and ``x``.
    """
    x, F, S, Ho, Wo = _prepare(x, size, stride)
    dout = _checks.array("dout", dout)
    N, C, H, W = x.shape
    _checks.same_shape("dout", dout, "N, C, H', W'", (N, C, Ho, Wo))
    dt = _checks.float_dtype(dout, x)
    dout = dout.astype(dt, copy=False)
    # (N, C, H', W', F, F) -> (N, C, H', W', F*F): the position of each window's maximum
    arg = _windows(x, F, S, Ho, Wo).reshape(N, C, Ho, Wo, F * F).argmax(axis=-1)
    dx = np.zeros((N, C, H, W), dtype=dt)
    _spread(dx, lambda a, c: np.where(arg == a * F + c, dout, 0), F, S, Ho, Wo)
    return dx


def avg_pool2d(x, size: int = 2, stride: int = 2) -> np.ndarray:
    """Average pooling: the mean of each ``size x size`` window, every channel on its own.

    Args:
        x: ``(N, C, H, W)``. size: window side ``F`` (default 2). stride: ``S`` (default 2).

    Returns:
        ``(N, C, H', W')`` with ``H' = (H - F) / S + 1``; float dtype of ``x`` (ints give float64).

    >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    x, F, S, Ho, Wo = _prepare(x, size, stride)
    x = x.astype(_checks.float_dtype(x), copy=False)
    N, C = x.shape[:2]
    if F == S:
        return x.reshape(N, C, Ho, F, Wo, F).mean(axis=(3, 5))
    return _windows(x, F, S, Ho, Wo).mean(axis=(4, 5))


def avg_pool2d_backward(dout, x, size: int = 2, stride: int = 2) -> np.ndarray:
    """Gradient of average pooling: a window's upstream gradient, shared equally by its F*F inputs.

    Args:
        dout: ``(N, C, H', W')``. x: ``(N, C, H, W)`` the forward input (its shape is what counts).
        size, stride: as forward.

    Returns:
        dx: ``(N, C, H, W)``, float dtype of ``dout`` and ``x``.
    """
    x, F, S, Ho, Wo = _prepare(x, size, stride)
    dout = _checks.array("dout", dout)
    N, C, H, W = x.shape
    _checks.same_shape("dout", dout, "N, C, H', W'", (N, C, Ho, Wo))
    dt = _checks.float_dtype(dout, x)
    share = dout.astype(dt) / (F * F)
    dx = np.zeros((N, C, H, W), dtype=dt)
    _spread(dx, lambda a, c: share, F, S, Ho, Wo)
    return dx
