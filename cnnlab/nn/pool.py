"""Pooling layers: max and average over FxF windows of each activation map independently.

Shapes: ``x: (N, C, H, W) -> out: (N, C, H', W')`` with ``H' = (H - size) / stride + 1`` (no
padding). Like a filter, a pooling window that does not fit (``H'`` not a whole number) is a
ValueError.
"""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks
from cnnlab.shapes import whole_number


def _prepare(x, size, stride):
    x = _checks.array("x", x)
    _checks.ndim("x", x, 4, "(N, C, H, W)")
    F = whole_number("size (the pooling window F)", size, 1)
    S = whole_number("stride S", stride, 1)
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


def max_pool2d(x, size: int = 2, stride: int = 2, return_indices: bool = False):
    """Max pooling: the largest value of each ``size x size`` window, every channel on its own.

    Args:
        x: ``(N, C, H, W)``.
        size: window side ``F``. Default 2.
        stride: ``S``. Default 2.
        return_indices: also return where each maximum was (PyTorch's ``return_indices``), for
            :func:`max_pool2d_backward`. Default False.

    Returns:
        out: ``(N, C, H', W')`` with ``H' = (H - F) / S + 1``, same dtype as ``x``; with
        ``return_indices``, ``(out, indices)``: ``indices (N, C, H', W')`` int64, the flat position
        ``h * W + w`` of each window's maximum in its ``H x W`` map (the first one in row-major
        order on ties, as PyTorch).

    >>> x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    >>> max_pool2d(x[None, None])[0, 0]
    array([[6, 8],
           [3, 4]])
    >>> max_pool2d(x[None, None], return_indices=True)[1][0, 0]   # 6 at (1, 1), 8 at (1, 3), ...
    array([[ 5,  7],
           [ 8, 15]])
    """
    x, F, S, Ho, Wo = _prepare(x, size, stride)
    if not return_indices:
        return _running_max(x, F, S, Ho, Wo)
    out = _running_max(x, F, S, Ho, Wo)
    offset = _argmax_offset(x, out, F, S, Ho, Wo)  # (N, C, H', W'): a*F + c inside the window
    W = x.shape[3]
    # window (i, j) starts at (i*S, j*S) of its map; offset a*F + c is the element (a, c) in it
    start = np.arange(Ho)[:, None] * (S * W) + np.arange(Wo) * S              # (H', W')
    step = (np.arange(F * F) // F) * W + np.arange(F * F) % F                 # (F*F,)
    indices = np.take(step.astype(np.int64), offset)                          # (N, C, H', W')
    indices += start
    return out, indices


def _running_max(x, F, S, Ho, Wo):
    """Each window's maximum ``(N, C, H', W')``: F*F elementwise passes over the window offsets."""
    out = x[:, :, _rows(0, S, Ho), _rows(0, S, Wo)].copy()
    for a in range(F):
        for c in range(F):
            if a or c:
                np.maximum(out, x[:, :, _rows(a, S, Ho), _rows(c, S, Wo)], out=out)
    return out


def _argmax_offset(x, out, F, S, Ho, Wo):
    """Where in each window its maximum ``out`` is, as the offset ``a*F + c`` (uint8 or int16).

    PyTorch's rule: a value replaces the maximum so far if it is larger or NaN, so ties go to the
    first maximum in row-major order, and a window holding NaNs points at its last NaN.
    """
    offsets = [(a, c) for a in range(F) for c in range(F)]
    dt = np.uint8 if F * F <= 256 else np.int16
    offset = np.zeros(out.shape, dtype=dt)
    free = np.ones(out.shape, dtype=bool)          # windows whose maximum is not found yet
    at = np.empty(out.shape, dtype=bool)
    for k, (a, c) in enumerate(offsets):
        np.equal(x[:, :, _rows(a, S, Ho), _rows(c, S, Wo)], out, out=at)
        at &= free                                  # the first maximum only
        free ^= at
        if k:
            offset += at.view(np.uint8).astype(dt, copy=False) * dt(k)
    if np.issubdtype(out.dtype, np.floating):
        nan = np.isnan(out)
        if nan.any():                                # rare: only then a pass for the NaNs
            for k, (a, c) in enumerate(offsets):
                v = x[:, :, _rows(a, S, Ho), _rows(c, S, Wo)]
                np.copyto(offset, k, where=nan & np.isnan(v))
    return offset


def max_pool2d_backward(dout, x, size: int = 2, stride: int = 2, indices=None) -> np.ndarray:
    """Gradient of max pooling: each window's upstream gradient goes to its maximum.

    With the ``indices`` that ``max_pool2d(x, size, stride, return_indices=True)`` returned, the
    gradient is scattered to them directly (what PyTorch does); without, the maxima are found
    again from ``x``. Ties go to the first maximum in row-major order, as in PyTorch.

    Args:
        dout: ``(N, C, H', W')``. x: ``(N, C, H, W)`` the forward input. size, stride: as forward.
        indices: ``(N, C, H', W')`` flat positions ``h * W + w`` of the maxima, or None.
            Default None.

    Returns:
        dx: ``(N, C, H, W)``, float dtype of ``dout`` and ``x``.
    """
    x, dout, F, S, Ho, Wo, dt = _prepare_backward(dout, x, size, stride)
    N, C, H, W = x.shape
    if indices is not None:
        return _scatter(dout, _checks_indices(indices, (N, C, Ho, Wo), H * W), (N, C, H, W), F, S)
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


def _checks_indices(indices, shape, size):
    """``indices`` as int64 of ``shape``, each in ``[0, H*W)``: a ValueError otherwise."""
    indices = np.asarray(indices)
    if indices.shape != shape:
        raise ValueError(
            f"indices must have the shape of the pooled output (N, C, H', W') = {shape},"
            f" got {indices.shape}"
        )
    if not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"indices must be integers (flat positions h * W + w), got dtype {indices.dtype}"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(
            f"indices must be flat positions h * W + w in [0, H*W) = [0, {size}), got values in"
            f" [{int(indices.min())}, {int(indices.max())}]"
        )
    return indices.astype(np.int64, copy=False)


def _scatter(dout, indices, x_shape, F, S):
    """dx ``(N, C, H, W)``: ``dout[n, c, i, j]`` added at ``indices[n, c, i, j]`` of map (n, c)."""
    N, C, H, W = x_shape
    flat = indices.reshape(N * C, -1) + (np.arange(N * C, dtype=np.int64) * (H * W))[:, None]
    if F <= S:   # windows do not overlap: no two indices are equal, plain assignment is exact
        dx = np.zeros(N * C * H * W, dtype=dout.dtype)
        dx[flat.ravel()] = dout.ravel()
    else:        # overlapping windows can share a maximum: sum
        dx = np.bincount(flat.ravel(), weights=dout.ravel(), minlength=N * C * H * W)
        dx = dx.astype(dout.dtype, copy=False)
    return dx.reshape(N, C, H, W)


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
