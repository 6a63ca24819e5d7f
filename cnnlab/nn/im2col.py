"""im2col / col2im: convolution as one matrix product.

``im2col`` copies every FxF receptive field (all C channels) into a column, so that a convolution
with K filters becomes ``w.reshape(K, C*F*F) @ cols``. ``col2im`` is its adjoint: it adds each
column back onto the pixels it came from (overlapping windows sum), which is what the backward
pass of a convolution needs.

Column layout: ``cols[n, (c, i, j), (h', w')] = x_padded[n, c, h'*S + i, w'*S + j]``, rows in the
order ``(c, i, j)`` of ``w.reshape(K, -1)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnlab.nn import _checks
from cnnlab.nn.pad import zero_pad
from cnnlab.shapes import whole_number


def _windows(xp: np.ndarray, F: int, S: int, Ho: int, Wo: int,
             writeable: bool = False) -> np.ndarray:
    """View ``(N, C, F, F, H', W')`` of the padded input, read-only unless asked:
    ``[n, c, i, j, h', w']`` is ``xp[n, c, h'*S + i, w'*S + j]``. No copy. Windows overlap, so a
    writeable view may only be added to one offset (i, j) at a time."""
    N, C = xp.shape[:2]
    sN, sC, sH, sW = xp.strides
    return as_strided(
        xp, shape=(N, C, F, F, Ho, Wo), strides=(sN, sC, sH, sW, S * sH, S * sW),
        writeable=writeable,
    )


def im2col(x, f: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Unfold the FxF windows of ``x`` into columns.

    Args:
        x: ``(N, C, H, W)``.
        f: filter size ``F``.
        stride: ``S`` >= 1. Default 1.
        pad: zero padding ``P`` >= 0. Default 0.

    Returns:
        cols: ``(N, C*F*F, H'*W')`` with ``H' = (H + 2P - F) / S + 1`` (same for W'), same dtype as
        ``x``, rows ordered ``(c, i, j)`` like ``w.reshape(K, -1)``.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> im2col(x, 2, stride=2)[0]   # (C*F*F, H'*W') = (4, 4): one column per window
    array([[ 0.,  2.,  8., 10.],
           [ 1.,  3.,  9., 11.],
           [ 4.,  6., 12., 14.],
           [ 5.,  7., 13., 15.]])
    """
    x = _checks.array("x", x)
    _checks.ndim("x", x, 4, "(N, C, H, W)")
    F = whole_number("f (the filter size F)", f, 1)
    S, P = _checks.stride_pad(stride, pad)
    N, C, H, W = x.shape
    Ho, Wo = _checks.window_output(H, W, F, S, P)
    return _im2col(x, F, S, P, Ho, Wo)


def _im2col(x: np.ndarray, F: int, S: int, P: int, Ho: int, Wo: int) -> np.ndarray:
    """im2col without checks: ``(N, C, H, W) -> (N, C*F*F, H'*W')``."""
    N, C = x.shape[:2]
    xp = zero_pad(x, P) if P else x
    # (N, C, F, F, H', W') strided view -> one contiguous copy -> (N, C*F*F, H'*W'), no second copy
    cols = np.ascontiguousarray(_windows(xp, F, S, Ho, Wo))
    return cols.reshape(N, C * F * F, Ho * Wo)


def col2im(cols, x_shape, f: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Fold columns back into an image, summing where windows overlap (the adjoint of ``im2col``).

    Args:
        cols: ``(N, C*F*F, H'*W')``.
        x_shape: ``(N, C, H, W)`` of the image the columns came from (before padding).
        f: filter size ``F``. stride: ``S``. pad: ``P`` (the padding is cropped away).

    Returns:
        ``(N, C, H, W)``, same dtype as ``cols``.

    >>> x = np.ones((1, 1, 3, 3))
    >>> col2im(im2col(x, 2), x.shape, 2)[0, 0]   # how many 2x2 windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    cols = _checks.array("cols", cols)
    if len(tuple(x_shape)) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    F = whole_number("f (the filter size F)", f, 1)
    S, P = _checks.stride_pad(stride, pad)
    Ho, Wo = _checks.window_output(H, W, F, S, P)
    _checks.same_shape("cols", cols, "N, C*F*F, H'*W'", (N, C * F * F, Ho * Wo))
    return _col2im(cols, (N, C, H, W), F, S, P, Ho, Wo)


def _col2im(cols, x_shape, F, S, P, Ho, Wo) -> np.ndarray:
    """col2im without checks, ``(N, C*F*F, H'*W') -> (N, C, H, W)``: F*F strided slice additions."""
    N, C, H, W = x_shape
    dt = cols.dtype if np.issubdtype(cols.dtype, np.floating) else np.float64
    cols6 = cols.reshape(N, C, F, F, Ho, Wo)
    xp = np.zeros((N, C, H + 2 * P, W + 2 * P), dtype=dt)
    for i in range(F):
        for j in range(F):
            # the (N, C, H', W') block of offset (i, j): rows i, i+S, ..., columns j, j+S, ...
            rows = slice(i, i + S * (Ho - 1) + 1, S)
            cols_ = slice(j, j + S * (Wo - 1) + 1, S)
            xp[:, :, rows, cols_] += cols6[:, :, i, j]
    return np.ascontiguousarray(xp[:, :, P : P + H, P : P + W]) if P else xp
