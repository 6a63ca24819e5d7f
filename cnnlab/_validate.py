"""The one check for whole-number arguments (sizes, counts, strides), torch-free.

Used by :mod:`cnnlab.shapes`, :mod:`cnnlab.nn`, :mod:`cnnlab.models`, :mod:`cnnlab.numpy_net`
and :mod:`cnnlab.train`, so every such argument fails the same way:

>>> whole_number("stride S", 2)
2
>>> whole_number("stride S", 0)
Traceback (most recent call last):
...
ValueError: stride S must be a whole number >= 1, got 0
"""

from __future__ import annotations

import numbers

import numpy as np


def whole_number(name: str, value, minimum: int = 1, allow_float: bool = True) -> int:
    """``value`` as an int if it is a whole number >= ``minimum``, else a ValueError naming both.

    Integers of any kind pass (NumPy's too), and so does a float holding a whole number (``2.0``)
    unless ``allow_float`` is False (for sizes handed on to PyTorch's layers as they are); a bool,
    ``2.5``, a string or None never does.
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
