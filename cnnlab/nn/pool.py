"""Pooling layers: max and average over FxF windows of each activation map independently.

Shapes: ``x: (N, C, H, W) -> out: (N, C, H', W')`` with ``H' = (H - size) / stride + 1`` (no
padding). Like a filter, a pooling window that does not fit (``H'`` not a whole number) is a
ValueError.
"""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks


def _prepare(x, size, stride):
    x = _checks.array("x", x)
    _checks.ndim("x", x, 4, "(N, C, H, W)")
    F = _checks._whole("size (the pooling window F)", size, 1)
    S = _checks._whole("stride S", stride, 1)
    Ho, Wo = _checks.window_output(x.shape[2], x.shape[3], F, S, 0, window="pooling window")
    return x, F, S, Ho, Wo


def _prepare_backward(dout, x, size, stride):
    """Checks of a pooling backward pass: ``dout`` must be ``(N, C, H', W')`` for this ``x``.

    Returns ``x, dout, F, S, Ho, Wo, dt`` with ``dout`` in ``dt``, the float dtype of both.
    """
    x, F, S, Ho, Wo = _prepare(x, size, stride)
    dout = _checks.array("dout", dout)
    N, C, _, _ = x.shape
    _checks.same_shape("dout", dout, "N, C, H', W'", (N, C, Ho, Wo))
    dt = _checks.float_dtype(dout, x)
    return x, dout.astype(dt, copy=False), F, S, Ho, Wo, dt


def _rows(a: int, S: int, n_out: int) -> slice:
    """Rows (or columns) a, a + S, ..., a + S*(n_out - 1): offset a of every window."""
    return slice(a, a + S * (n_out - 1) + 1, S)


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
    # running maximum over the F*F window offsets: F*F elementwise passes over (N, C, H', W')
    out = x[:, :, _rows(0, S, Ho), _rows(0, S, Wo)].copy()
    for a in range(F):
        for c in range(F):
            if a or c:
                np.maximum(out, x[:, :, _rows(a, S, Ho), _rows(c, S, Wo)], out=out)
    return out


def max_pool2d_backward(dout, x, size: int = 2, stride: int = 2) -> np.ndarray:
    """Gradient of max pooling: each window's upstream gradient goes to its maximum.

    Ties go to the first maximum in row-major order, as in PyTorch (a window holding a NaN gets
    no gradient).

    Args:
        dout: ``(N, C, H', W')``. x: ``(N, C, H, W)`` the forward input. size, stride: as forward.

    Returns:
        dx: ``(N, C, H, W)``, float dtype of ``dout`` and ``x``.
    """
    x, dout, F, S, Ho, Wo, dt = _prepare_backward(dout, x, size, stride)
    N, C, H, W = x.shape
    out = max_pool2d(x, F, S)
    tiles = F == S                                 # windows tile x exactly: every input in one
    dx = np.empty((N, C, H, W), dtype=dt) if tiles else np.zeros((N, C, H, W), dtype=dt)
    free = np.ones(out.shape, dtype=bool)          # windows whose maximum is still unclaimed
    at = np.empty(out.shape, dtype=bool)
    offsets = [(a, c) for a in range(F) for c in range(F)]   # row-major: the first maximum wins
    for k, (a, c) in enumerate(offsets):
        rows, cols = _rows(a, S, Ho), _rows(c, S, Wo)
        np.equal(x[:, :, rows, cols], out, out=at)
        if k:
            at &= free
        if k + 1 < len(offsets):
            free ^= at
        if F <= S:   # windows do not overlap: each input gets at most one window's gradient
            np.multiply(dout, at, out=dx[:, :, rows, cols])
        else:
            dx[:, :, rows, cols] += dout * at
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
    out = x[:, :, _rows(0, S, Ho), _rows(0, S, Wo)].copy()
    for a in range(F):
        for c in range(F):
            if a or c:
                out += x[:, :, _rows(a, S, Ho), _rows(c, S, Wo)]
    out /= F * F
    return out


def avg_pool2d_backward(dout, x, size: int = 2, stride: int = 2) -> np.ndarray:
    """Gradient of average pooling: a window's upstream gradient, shared equally by its F*F inputs.

    Args:
        dout: ``(N, C, H', W')``. x: ``(N, C, H, W)`` the forward input (its shape is what counts).
        size, stride: as forward.

    Returns:
        dx: ``(N, C, H, W)``, float dtype of ``dout`` and ``x``.
    """
    x, dout, F, S, Ho, Wo, dt = _prepare_backward(dout, x, size, stride)
    N, C, H, W = x.shape
    share = dout / (F * F)
    dx = np.zeros((N, C, H, W), dtype=dt)
    for a in range(F):
        for c in range(F):
            dx[:, :, _rows(a, S, Ho), _rows(c, S, Wo)] += share
    return dx
