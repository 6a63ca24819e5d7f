"""Scratch buffers for the large temporaries of ``conv2d`` (the im2col columns and friends).

A fresh 10-100 MB array is paid for again at every call: the kernel maps and zeroes its pages on
first touch (about 30 ms for the 75 MB columns of a 64-channel 3x3 layer on 32 images here).
Reusing one buffer per role makes that a one-time cost. Buffers never leave the function that
asked for them (results are always fresh arrays), are kept per thread, and a request above
``MAX_BYTES`` gets a plain ``np.empty``.
"""

from __future__ import annotations

import threading

import numpy as np

MAX_BYTES = 128 * 2**20
ALIGN = 64
_local = threading.local()


def scratch(role: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape``/``dtype``, reusing the buffer of ``role``.

    The previous array handed out for the same ``role`` (in this thread) is overwritten.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > MAX_BYTES:
        return np.empty(shape, dtype=dtype)
    buffers = _local.__dict__.setdefault("buffers", {})
    buf = buffers.get(role)
    if buf is None or buf.nbytes < nbytes + ALIGN:
        buffers[role] = buf = np.empty(max(nbytes, 1) + ALIGN, dtype=np.uint8)
    # start on a 64-byte boundary: OpenBLAS writes an unaligned `out=` several times slower
    # (measured 7.9 ms against 1.4 ms for a (25, 27) @ (27, 25600) product)
    start = -buf.ctypes.data % ALIGN
    return buf[start : start + nbytes].view(dtype).reshape(shape)

