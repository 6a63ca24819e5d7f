"""Shape arithmetic of convolution layers, with errors that teach.

The slides' letters: an input of width (or height) ``N``, a filter of size ``F``, stride ``S``,
zero padding ``P`` and ``K`` filters over ``C`` input channels. One spatial side of the output is

    (N + 2P - F) / S + 1

and it must be a whole number: a filter that does not fit is a ``ValueError`` naming the values.

>>> conv_output_size(7, 3, stride=2)
3
>>> conv_output_size(32, 5, stride=1, pad=same_padding(5))
32
>>> conv_param_count(5, 3, 10)
760
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["conv_output_size", "same_padding", "conv_param_count", "fc_param_count"]


def whole_number(name: str, value, minimum: int = 1, allow_float: bool = True) -> int:
    """``value`` as an int if it is a whole number >= ``minimum``, else a ValueError naming both.

    Integers of any kind pass (NumPy's too), and so does a float holding a whole number (``2.0``)
    unless ``allow_float`` is False (for sizes handed on to PyTorch's layers as they are); a bool,
    ``2.5``, a string or None never does. The one check of this kind: the layers
    (``cnnlab.nn``), the models, ``numpy_net`` and ``train`` use it too. It lives here, torch-free,
    so that an exercise that allows ``cnnlab.shapes`` allows everything ``conv_output_size`` calls.

    >>> whole_number("stride S", 2.0)
    2
    """
    rule = f"{name} must be {'a whole number' if allow_float else 'an int'} >= {minimum}"
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{rule}, got the bool {bool(value)}")
    if not isinstance(value, numbers.Integral):
        if allow_float and isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{rule}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{rule}, got {value}")
    return value


def _fmt(v: float) -> str:
    """2.3333 -> '2.33', 2.5 -> '2.5', 4.0 -> '4'."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _side(n: int, f: int, stride: int, pad: int, what: str, where: str) -> int:
    """One output side ``(n + 2*pad - f) / stride + 1``; ``what``/``where`` word the errors.

    ``what`` names the window ("a 3x3 filter"), ``where`` the input ("a 7x7 input").
    """
    padded = n + 2 * pad
    padding = f" + 2*{pad}" if pad else ""
    if f > padded:
        raise ValueError(
            f"{what} is larger than {where}"
            + (f" padded by {pad} ({n} + 2*{pad} = {padded})" if pad else "")
            + f": F = {f} > N + 2P = {padded}, so no window position exists"
        )
    if (padded - f) % stride:
        stride_pad = f"stride {stride}" + (f" and pad {pad}" if pad else "")
        raise ValueError(
            f"{what} does not fit {where} with {stride_pad}: ({n}{padding} - {f}) / {stride} + 1"
            f" = {_fmt((padded - f) / stride + 1)} is not a whole number"
        )
    return (padded - f) // stride + 1


def conv_output_size(n: int, f: int, stride: int = 1, pad: int = 0) -> int:
    """Output side of a convolution (or pooling) window sliding over one input side.

    Args:
        n: input side ``N`` (width or height), >= 1.
        f: filter side ``F``, >= 1.
        stride: ``S`` >= 1. Default 1.
        pad: zero padding ``P`` >= 0 on each border. Default 0.

    Returns:
        ``(N + 2P - F) / S + 1``.

    Raises:
        ValueError: a value is not a whole number in range, the filter is larger than the padded
            input, or the filter does not fit (the quotient is not a whole number).

    >>> [conv_output_size(7, 3, stride=s) for s in (1, 2)]
    [5, 3]
    >>> conv_output_size(7, 3, stride=3)
    Traceback (most recent call last):
    ...
    ValueError: a 3x3 filter does not fit a 7x7 input with stride 3: (7 - 3) / 3 + 1 = 2.33 is not a whole number
    """  # noqa: E501
    n = whole_number("n (the input size N)", n, 1)
    f = whole_number("f (the filter size F)", f, 1)
    stride = whole_number("stride S", stride, 1)
    pad = whole_number("pad P", pad, 0)
    return _side(n, f, stride, pad, f"a {f}x{f} filter", f"a {n}x{n} input")


def same_padding(f: int) -> int:
    """Zero padding ``P = (F - 1) / 2`` keeping the size at stride 1 (F = 3 -> 1, 5 -> 2, 7 -> 3).

    Raises:
        ValueError: for an even ``F``, where no symmetric padding keeps the size.

    >>> [same_padding(f) for f in (1, 3, 5, 7)]
    [0, 1, 2, 3]
    """
    f = whole_number("f (the filter size F)", f, 1)
    if f % 2 == 0:
        raise ValueError(
            f"same padding needs an odd filter size: F = {f} gives P = (F - 1) / 2 ="
            f" {_fmt((f - 1) / 2)}, not a whole number, so no symmetric zero padding keeps the size"
        )
    return (f - 1) // 2


def conv_param_count(f: int, c: int, k: int) -> int:
    """Learnable parameters of a conv layer: ``F*F*C*K`` weights plus ``K`` biases.

    Args:
        f: filter side ``F``. c: input channels ``C``. k: number of filters ``K``.

    >>> conv_param_count(5, 3, 10)  # 10 5x5x3 filters: each 5*5*3 + 1 = 76
    760
    """
    f = whole_number("f (the filter size F)", f, 1)
    c = whole_number("c (the input channels C)", c, 1)
    k = whole_number("k (the number of filters K)", k, 1)
    return f * f * c * k + k


def fc_param_count(n_in: int, n_out: int) -> int:
    """Parameters of a fully connected layer: ``n_in*n_out`` weights plus ``n_out`` biases.

    >>> fc_param_count(32 * 32 * 3, 10)  # the slides' 3072-vector to 10 scores
    30730
    """
    n_in = whole_number("n_in", n_in, 1)
    n_out = whole_number("n_out", n_out, 1)
    return n_in * n_out + n_out
