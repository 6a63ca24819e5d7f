"""Input checks shared by the architectures: a ValueError that teaches, before PyTorch's error."""

from __future__ import annotations

import torch


def check_input(
    x: torch.Tensor,
    *,
    model: str,
    in_channels: int,
    min_size: int = 1,
    exact_size: int | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Raise ``ValueError`` unless ``x`` is a batch ``(N, C, H, W)`` this model can take.

    Args:
        x: the input batch.
        model: the model's name, used in the message.
        in_channels: the channel count ``C`` the model was built for.
        min_size: the smallest ``H`` and ``W`` its pooling stack can shrink to at least 1x1.
        exact_size: if given, ``H`` and ``W`` must equal it (fully connected layers fix the size).
        dtype: if given, the dtype of the model's parameters, which the input must share.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{model} expects a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}"
        )
    if x.dim() != 4:
        raise ValueError(
            f"{model} expects a batch of shape (N, C, H, W), got a {x.dim()}-d tensor of shape "
            f"{tuple(x.shape)}; for a single image use x.unsqueeze(0)"
        )
    if dtype is not None and x.dtype != dtype:
        hint = f"x.to({dtype})" if x.is_floating_point() else "x.float() / 255 for 0..255 pixels"
        raise ValueError(
            f"{model}'s parameters are {dtype}, but the input is {x.dtype}; convert it: {hint}"
        )
    _, C, H, W = x.shape
    if C != in_channels:
        raise ValueError(
            f"{model} was built for in_channels={in_channels}, but the input has C={C} channels "
            f"(shape {tuple(x.shape)}); build it with in_channels={C} or convert the images"
        )
    if exact_size is not None and (H != exact_size or W != exact_size):
        raise ValueError(
            f"{model} expects {exact_size}x{exact_size} images (its fully connected layers fix the "
            f"size), got {H}x{W}; resize the images, e.g. load_digits(resize={exact_size})"
        )
    if H < min_size or W < min_size:
        raise ValueError(
            f"{model} needs images of at least {min_size}x{min_size}: smaller ones shrink to "
            f"nothing in its pooling stack; got {H}x{W}"
        )


def param_dtype(module: torch.nn.Module) -> torch.dtype | None:
    """The dtype of a module's first parameter (None without parameters)."""
    p = next(module.parameters(), None)
    return None if p is None else p.dtype
