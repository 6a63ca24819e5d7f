"""``summary(model, input_shape)``: each layer's output shape and parameter count, and totals."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torchinfo
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    """One row of a :class:`ModelSummary`."""

    name: str  #: the module's attribute name, dotted from the model (``"features.0"``)
    layer: str  #: the module's class name (``"Conv2d"``)
    depth: int  #: nesting depth, 1 for the model's direct children
    output_shape: tuple[int, ...]  #: output shape for the given input, batch dimension included
    num_params: int  #: parameters owned by this module and its children


@dataclass(frozen=True)
class ModelSummary:
    """What :func:`summary` returns: rows, totals, and the table as text (its ``str``/``repr``)."""

    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    input_shape: tuple[int, ...]
    table: str = field(repr=False)

    def __str__(self) -> str:
        return self.table

    __repr__ = __str__


def summary(
    model: nn.Module,
    input_shape: Sequence[int],
    depth: int = 2,
    verbose: bool = False,
) -> ModelSummary:
    """Run one zero batch through ``model`` and tabulate each layer's output shape and parameters.

    Built on ``torchinfo`` (pinned in ``pyproject.toml``). The model runs in eval mode and its
    mode is restored afterwards; nothing is printed unless ``verbose``.

    Args:
        model (nn.Module): the network.
        input_shape (sequence of int): ``(C, H, W)`` for one image, or ``(N, C, H, W)``.
        depth (int): how deep to list nested modules (1: the model's children only). Default: 2
        verbose (bool): also print the table. Default: False

    Returns:
        ModelSummary: ``.rows`` (list of :class:`LayerRow`), ``.total_params``,
        ``.trainable_params``, ``.table``; displaying it shows the table.

    Example:
        >>> from cnnlab.models import LeNet5, summary
        >>> s = summary(LeNet5(), (1, 32, 32), depth=1)
        >>> s.total_params
        61706
        >>> [(r.name, r.output_shape) for r in s.rows][:2]
        [('features', (1, 120, 1, 1)), ('classifier', (1, 10))]
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or any(d < 1 for d in shape):
        raise ValueError(
            "input_shape must be (C, H, W) or (N, C, H, W) with positive sizes, "
            f"got {tuple(input_shape)}"
        )
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    was_training = model.training
    try:
        model.eval()
        # Our own check first: torchinfo wraps a model's exceptions in a RuntimeError.
        first = next(model.parameters(), None)
        device = torch.device("cpu") if first is None else first.device
        dtype = torch.float32 if first is None else first.dtype
        with torch.no_grad():
            model(torch.zeros(shape, device=device, dtype=dtype))
        stats = torchinfo.summary(
            model,
            input_size=shape,
            depth=depth,
            col_names=("output_size", "num_params"),
            row_settings=("var_names",),
            device=device,
            dtypes=[dtype],
            mode="eval",
            verbose=0,
        )
    finally:
        model.train(was_training)
    rows = []
    for info in stats.summary_list:
        if info.depth < 1 or info.depth > depth:
            continue
        out = info.output_size
        rows.append(
            LayerRow(
                name=_dotted_name(info),
                layer=info.class_name,
                depth=info.depth,
                output_shape=tuple(out) if isinstance(out, (list, tuple)) else (),
                num_params=int(info.num_params),
            )
        )
    # torchinfo 1.8 prints its unit enum on Python 3.11 ("Total mult-adds (Units.MEGABYTES)")
    table = re.sub(r"\(Units\.(\w)\w*\)", r"(\1)", str(stats))
    result = ModelSummary(
        rows=rows,
        total_params=int(stats.total_params),
        trainable_params=int(stats.trainable_params),
        input_shape=shape,
        table=table,
    )
    if verbose:
        print(table)
    return result


def _dotted_name(info) -> str:
    """The module's path from the model, such as ``features.0``."""
    parts = []
    while info is not None and info.depth >= 1:
        parts.append(info.var_name)
        info = info.parent_info
    return ".".join(reversed(parts))
