"""Data augmentation for images ``x: (N, C, H, W)``: random shifts, for NumPy arrays and tensors.

One implementation serves both trainers: :func:`cnnlab.train.fit` (PyTorch tensors, offsets from
PyTorch's global generator, so ``fit``'s ``seed`` repeats them) and
:func:`cnnlab.numpy_net.train` (NumPy arrays, offsets from the ``rng`` it passes). The module
itself does not import PyTorch.
"""

from __future__ import annotations

import numpy as np

from cnnlab.shapes import whole_number

__all__ = ["random_shift"]


def random_shift(x, max_shift: int = 1, rng: np.random.Generator | None = None):
    """Shift each image by up to ``max_shift`` pixels in H and W, filling with zeros.

    Args:
        x: images ``(N, C, H, W)``, a NumPy array or a torch Tensor (on the CPU).
        max_shift (int): largest shift ``s``; each image moves by ``-s..s`` rows and columns,
            drawn uniformly. Default: 1
        rng (numpy.random.Generator, optional): where the offsets come from. Default: None, which
            for a tensor means PyTorch's global generator and for an array a fresh NumPy one.

    Returns:
        ``(N, C, H, W)``, the shifted images, of the type and dtype of ``x``.

    Example:
        >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> random_shift(x, 1, np.random.default_rng(0))[0, 0]   # here: up by one row
        array([[3., 4., 5.],
               [6., 7., 8.],
               [0., 0., 0.]])
    """
    s = whole_number("max_shift", max_shift, 0, allow_float=False)
    if x.ndim != 4:
        raise ValueError(f"random_shift expects x: (N, C, H, W), got shape {tuple(x.shape)}")
    is_tensor = not isinstance(x, np.ndarray) and hasattr(x, "numpy")
    if s == 0:
        return x
    N, C, H, W = x.shape
    if rng is not None:
        dy, dx = rng.integers(0, 2 * s + 1, size=(2, N))
    elif is_tensor:
        import torch

        dy, dx = torch.randint(0, 2 * s + 1, (2, N)).numpy()
    else:
        dy, dx = np.random.default_rng().integers(0, 2 * s + 1, size=(2, N))
    a = x.numpy() if is_tensor else np.asarray(x)
    padded = np.pad(a, ((0, 0), (0, 0), (s, s), (s, s)))  # (N, C, H + 2s, W + 2s)
    # one H x W window per image, at offset (dy, dx): a shift by (s - dy, s - dx)
    rows = dy[:, None] + np.arange(H)  # (N, H)
    cols = dx[:, None] + np.arange(W)  # (N, W)
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    out = padded[n, c, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)
    if is_tensor:
        import torch

        return torch.from_numpy(out)
    return out
