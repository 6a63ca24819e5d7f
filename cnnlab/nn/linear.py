"""The fully connected (linear) layer: ``out = x @ w.T + b`` with ``w: (M, D)`` as in PyTorch.

The input is flattened to ``(N, D)`` first, so a ``(N, C, H, W)`` volume is "stretched" into
``D = C*H*W`` numbers per image (the slides' 32x32x3 image -> a 3072-vector).
"""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks


def _prepare(x, w):
    x = _checks.array("x", x)
    w = _checks.array("w", w)
    if x.ndim < 1:
        raise ValueError(f"x must have a batch axis N, (N, ...), got a 0-D array {x!r}")
    _checks.ndim("w", w, 2, "(M, D)")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    M, Dw = w.shape
    if D != Dw:
        raise ValueError(
            f"x of shape {x.shape} flattens to (N, D) = ({N}, {D}) but w of shape (M, D) ="
            f" {w.shape} expects D = {Dw} inputs"
        )
    return x, w, N, D, M


def linear(x, w, b) -> np.ndarray:
    """Fully connected layer.

    Args:
        x: ``(N, D)`` or ``(N, d1, d2, ...)`` flattened to ``(N, D)``, ``D = d1*d2*...``.
        w: ``(M, D)`` weights (PyTorch's ``nn.Linear.weight`` layout).
        b: ``(M,)`` biases.

    Returns:
        out: ``(N, M) = x.reshape(N, D) @ w.T + b``, float dtype of the inputs.

    >>> linear(np.ones((2, 3, 32, 32)), np.ones((10, 3072)), np.zeros(10)).shape
    (2, 10)
    """
    x, w, N, D, M = _prepare(x, w)
    b = _checks.array("b", b)
    _checks.same_shape("b", b, "M,", (M,))
    dt = _checks.float_dtype(x, w, b)
    x2 = x.reshape(N, D).astype(dt, copy=False)
    return x2 @ w.astype(dt, copy=False).T + b.astype(dt, copy=False)  # (N, D) @ (D, M) -> (N, M)


def linear_backward(dout, x, w):
    """Gradients of the linear layer.

    Args:
        dout: ``(N, M)``. x: the forward input ``(N, ...)``. w: ``(M, D)``.

    Returns:
        ``(dx, dw, db)``: ``dx = dout @ w`` reshaped to ``x.shape``; ``dw = dout.T @ x2`` of shape
        ``(M, D)``; ``db = dout.sum(0)`` of shape ``(M,)``.
    """
    x, w, N, D, M = _prepare(x, w)
    dout = _checks.array("dout", dout)
    _checks.same_shape("dout", dout, "N, M", (N, M))
    dt = _checks.float_dtype(dout, x, w)
    dout = dout.astype(dt, copy=False)
    x2 = x.reshape(N, D).astype(dt, copy=False)
    dx = (dout @ w.astype(dt, copy=False)).reshape(x.shape)  # (N, M) @ (M, D) -> (N, D)
    dw = dout.T @ x2                                          # (M, N) @ (N, D) -> (M, D)
    db = dout.sum(axis=0)                                     # (M,)
    return dx, dw, db
