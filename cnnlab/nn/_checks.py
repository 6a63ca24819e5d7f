"""Input validation shared by the layers: every bad input becomes a ValueError that names the
values and the rule (never an IndexError deep inside NumPy)."""

from __future__ import annotations

import numpy as np

from cnnlab.shapes import _side, whole_number


def array(name: str, a) -> np.ndarray:
    """``a`` as an ndarray; a non-numeric array is a ValueError."""
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype results are computed in: the inputs' common float type (ints become float64).

    float32 inputs stay float32, float64 stay float64, a float32/float64 mix gives float64.
    """
    dt = np.result_type(*arrays)
    if not np.issubdtype(dt, np.floating):
        dt = np.result_type(dt, np.float64)
    return np.dtype(dt)


def ndim(name: str, a: np.ndarray, n: int, letters: str) -> None:
    if a.ndim != n:
        raise ValueError(f"{name} must be {n}-D {letters}, got {a.ndim}-D shape {a.shape}")


def stride_pad(stride, pad) -> tuple[int, int]:
    return whole_number("stride S", stride, 1), whole_number("pad P", pad, 0)


def window_output(
    H: int, W: int, F: int, S: int, P: int, window: str = "filter"
) -> tuple[int, int]:
    """``(H', W')`` of an FxF window sliding over an HxW input padded by P with stride S.

    ``H' = (H + 2P - F) / S + 1`` must be a whole number >= 1, and the same for W.
    """
    what = f"a {F}x{F} {window}"
    where = f"a {H}x{W} input"
    if H == W:
        Ho = _side(H, F, S, P, what, where)
        return Ho, Ho
    try:
        Ho = _side(H, F, S, P, what, where)
    except ValueError as e:
        raise ValueError(f"along the height H = {H}: {e}") from None
    try:
        Wo = _side(W, F, S, P, what, where)
    except ValueError as e:
        raise ValueError(f"along the width W = {W}: {e}") from None
    return Ho, Wo


def conv_args(x, w, b=None):
    """Check ``x: (N, C, H, W)``, ``w: (K, C, F, F)`` and ``b: (K,)``; return them as arrays."""
    x = array("x", x)
    w = array("w", w)
    ndim("x", x, 4, "(N, C, H, W)")
    ndim("w", w, 4, "(K, C, F, F)")
    K, Cw, F1, F2 = w.shape
    if F1 != F2:
        raise ValueError(
            f"filters must be square, w: (K, C, F, F), got w.shape = {w.shape} ({F1}x{F2})"
        )
    if 0 in w.shape:
        raise ValueError(f"w: (K, C, F, F) must have no empty axis, got w.shape = {w.shape}")
    if x.shape[1] != Cw:
        raise ValueError(
            f"channel mismatch: x has C = {x.shape[1]} channels (x.shape = {x.shape}) but the"
            f" filters expect C = {Cw} (w.shape = {w.shape}); filters always extend the full"
            " depth of the input"
        )
    if b is not None:
        b = array("b", b)
        if b.shape != (K,):
            raise ValueError(
                f"b must have shape (K,) = ({K},) for K = {K} filters, got b.shape = {b.shape}"
            )
    return x, w, b


def same_shape(name_a: str, a: np.ndarray, name_b: str, shape: tuple) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{name_a} must have shape {tuple(shape)} ({name_b}), got {a.shape}")
