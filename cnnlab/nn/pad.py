"""Zero padding of the border: ``P`` pixels of zeros around every side of each image."""

from __future__ import annotations

import numpy as np

from cnnlab.nn import _checks


def zero_pad(x, pad: int) -> np.ndarray:
    """Pad the last two (spatial) axes of ``x`` with ``pad`` zeros on every side.

    Args:
        x: ``(N, C, H, W)`` images (any array with >= 2 axes; the last two are H and W).
        pad: ``P`` >= 0.

    Returns:
        ``(N, C, H + 2P, W + 2P)``, same dtype as ``x``.

    >>> zero_pad(np.ones((1, 1, 2, 2)), 1)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    """
    x = _checks.array("x", x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 axes (..., H, W) to pad, got shape {x.shape}")
    pad = _checks.stride_pad(1, pad)[1]
    if pad == 0:
        return x.copy()
    *lead, H, W = x.shape
    out = np.zeros((*lead, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    out[..., pad : pad + H, pad : pad + W] = x
    return out
