"""Figures for the course: training curves, a confusion matrix, filters, activation maps.

Every function returns a ``matplotlib.figure.Figure`` and never calls ``plt.show()``. The figure
is closed in pyplot (no figure piles up and none is shown twice): leave it as a notebook cell's
last value (or ``display(fig)``) to show it, ``fig.savefig(path)`` to save it.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

__all__ = [
    "activation_maps",
    "capture_activations",
    "confusion_matrix",
    "filters",
    "training_curves",
]


def _new(nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(nrows, ncols, **kwargs)
    plt.close(fig)  # detach from pyplot: returned, not shown by the inline backend a second time
    return fig, axes


def training_curves(history: Any) -> Figure:
    """Loss and accuracy per epoch, training and validation, side by side.

    Args:
        history: a :class:`cnnlab.train.History`, or a dict with lists ``train_loss``,
            ``train_acc`` and optionally ``val_loss``, ``val_acc``.

    Example:
        >>> from cnnlab.plot import training_curves
        >>> fig = training_curves({"train_loss": [1.0, 0.5], "train_acc": [0.6, 0.8]})
        >>> [ax.get_title() for ax in fig.axes]
        ['loss', 'accuracy']
    """
    h = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    for key in ("train_loss", "train_acc"):
        if key not in h:
            raise ValueError(f"history needs a {key!r} list, got keys {sorted(h)}")
    fig, (ax_loss, ax_acc) = _new(1, 2, figsize=(9, 3.5), layout="constrained")
    for ax, key in [(ax_loss, "loss"), (ax_acc, "acc")]:
        for part, style in [("train", "-o"), ("val", "--s")]:
            values = h.get(f"{part}_{key}") or []
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, markersize=3, label=part)
        ax.set_xlabel("epoch")
        ax.set_title("loss" if key == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def confusion_matrix(
    cm: Any, class_names: list[str] | None = None, normalize: bool = False
) -> Figure:
    """A confusion matrix as an annotated heat map (rows: true class, columns: predicted).

    Args:
        cm: ``(K, K)`` counts, e.g. from :func:`cnnlab.train.confusion_matrix`.
        class_names (list of str, optional): ``K`` names for the ticks. Default: 0..K-1
        normalize (bool): show each row as fractions of the true class. Default: False
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {cm.shape}")
    K = cm.shape[0]
    names = [str(i) for i in range(K)] if class_names is None else list(class_names)
    if len(names) != K:
        raise ValueError(f"class_names has {len(names)} names for a {K}x{K} matrix")
    values = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = _new(figsize=(0.5 * K + 2.5, 0.5 * K + 2), layout="constrained")
    im = ax.imshow(values, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(K), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
    ax.set_yticks(range(K), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = values.max() if values.size else 0
    for i in range(K):
        for j in range(K):
            text = f"{values[i, j]:.2f}" if normalize else str(int(values[i, j]))
            color = "white" if top and values[i, j] > top / 2 else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    return fig


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    ncols = ncols or min(n, 8)
    return math.ceil(n / ncols), ncols


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def filters(weight: Any, channel: int | None = None, ncols: int | None = None) -> Figure:
    """Show convolution filters ``w: (K, C, F, F)`` as a grid of small images.

    With ``C == 3`` and ``channel=None`` each filter is shown in colour (scaled to [0, 1] as a
    whole); otherwise channel ``channel`` (default 0) of each filter in grey.

    Args:
        weight: a tensor or array ``(K, C, F, F)``, or an ``nn.Conv2d``.
        channel (int, optional): which input channel to show. Default: None (RGB if C == 3, else 0)
        ncols (int, optional): columns of the grid. Default: min(K, 8)
    """
    if isinstance(weight, nn.Conv2d):
        weight = weight.weight
    w = _to_numpy(weight)
    if w.ndim != 4:
        raise ValueError(f"filters expects w: (K, C, F, F) or an nn.Conv2d, got shape {w.shape}")
    K, C = w.shape[:2]
    if channel is not None and not 0 <= channel < C:
        raise ValueError(f"channel must be in 0..{C - 1} for filters with C={C}, got {channel}")
    rgb = C == 3 and channel is None
    nrows, ncols = _grid(K, ncols)
    fig, axes = _new(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= K:
            continue
        if rgb:
            img = w[k].transpose(1, 2, 0)  # (C, F, F) -> (F, F, C)
            lo, hi = img.min(), img.max()
            ax.imshow((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img))
        else:
            ax.imshow(w[k, channel or 0], cmap="gray")
        ax.set_title(str(k), fontsize=7)
    return fig


def capture_activations(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``model(x)`` in eval mode and return what ``layer`` outputs, ``(N, K, H', W')``."""
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"{type(layer).__name__} is not a submodule of this model")
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0]


def activation_maps(maps: Any, max_maps: int = 32, ncols: int | None = None) -> Figure:
    """Show activation maps ``(K, H, W)`` (or the first image of ``(N, K, H, W)``) in a grid.

    Get them with :func:`capture_activations`, e.g.
    ``activation_maps(capture_activations(model, model.conv1_1, x[:1]))``.

    Args:
        maps: tensor or array ``(K, H, W)`` or ``(N, K, H, W)``.
        max_maps (int): show at most this many maps. Default: 32
        ncols (int, optional): columns of the grid. Default: min(K, 8)
    """
    a = _to_numpy(maps)
    if a.ndim == 4:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"activation_maps expects (K, H, W) or (N, K, H, W), got shape {a.shape}")
    K = min(a.shape[0], max_maps)
    nrows, ncols = _grid(K, ncols)
    fig, axes = _new(nrows, ncols, figsize=(1.3 * ncols, 1.3 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < K:
            ax.imshow(a[k], cmap="viridis")
            ax.set_title(str(k), fontsize=7)
    return fig
