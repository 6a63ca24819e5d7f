"""Numerical gradients by central differences, and the relative error used to compare gradients.

>>> x = np.array([1.0, 2.0, 3.0])
>>> g = numerical_gradient(lambda v: v**2, x, np.ones(3))   # d/dx sum(x**2) = 2x
>>> rel_error(g, 2 * x) < 1e-8
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout, h: float = 1e-5):
    """Gradient of ``sum(f(x) * dout)`` with respect to ``x`` by central differences.

    For each element ``x[i]``: ``(sum(f(x + h e_i) * dout) - sum(f(x - h e_i) * dout)) / (2h)``.
    ``x`` is perturbed in place and restored afterwards, so pass the very array ``f`` reads.
    Use float64: with float32 and ``h = 1e-5`` the differences drown in rounding.

    Args:
        f: function of ``x`` returning an array (or a scalar loss, with ``dout = 1``).
        x: float array, perturbed one element at a time.
        dout: upstream gradient, the shape of ``f(x)``.
        h: step. Default 1e-5.

    Returns:
        grad: the shape of ``x``, dtype of ``x``.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"x must be a float ndarray (it is perturbed in place), got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else "")
        )
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h}")
    dout = np.asarray(dout)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = np.sum(np.asarray(f(x)) * dout)
        x[i] = old - h
        neg = np.sum(np.asarray(f(x)) * dout)
        x[i] = old
        grad[i] = (pos - neg) / (2 * h)
        it.iternext()
    return grad


def rel_error(a, b) -> float:
    """Largest elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)``, a Python float.

    Around 1e-7 or less means agreement in float64; 1e-2 or more means a bug.

    >>> round(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 2e-9])), 12)
    5e-10
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape to compare, got {a.shape} and {b.shape}"
        )
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
