"""The ReLU activation, ``max(0, x)`` elementwise, and its gradient."""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks


def relu(x) -> np.ndarray:
    """``max(0, x)`` elementwise; any shape, same dtype as ``x``.

    >>> relu(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 3.])
    """
    x = _checks.array("x", x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_backward(dout, x) -> np.ndarray:
    """Gradient of ReLU: ``dout`` where ``x > 0``, else 0 (0 at ``x == 0``, as PyTorch).

    Args:
        dout: upstream gradient, same shape as ``x``. x: the forward input.

    Returns:
        dx: shape of ``x``, float dtype of ``dout`` and ``x``.
    """
    x = _checks.array("x", x)
    dout = _checks.array("dout", dout)
    _checks.same_shape("dout", dout, "the shape of x", x.shape)
    dt = _checks.float_dtype(dout, x)
    return np.where(x > 0, dout, 0).astype(dt, copy=False)
