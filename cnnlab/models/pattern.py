"""The slides' recipe as a function: ``[(CONV-RELU)*N - POOL?]*M - (FC-RELU)*K, SOFTMAX``."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.shapes import whole_number

from ._checks import check_input, param_dtype


class ConvNet(nn.Sequential):
    """An ``nn.Sequential`` built by :func:`convnet`, which checks its input before running."""

    def __init__(self, layers: OrderedDict, in_channels: int, input_size: int) -> None:
        super().__init__(layers)
        self.in_channels = in_channels
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x, model="convnet", in_channels=self.in_channels, exact_size=self.input_size,
            dtype=param_dtype(self),
        )
        return super().forward(x)


def convnet(
    in_channels: int,
    num_classes: int,
    n: int = 2,
    m: int = 3,
    k: int = 1,
    width: int = 32,
    *,
    input_size: int = 32,
    hidden: int = 128,
    pool: bool = True,
    kernel_size: int = 3,
    growth: int = 2,
) -> ConvNet:
    r"""Build ``[(CONV-RELU)*N - POOL?]*M - (FC-RELU)*K, SOFTMAX`` with numbers.

    Stage ``i`` (``i = 1..M``) stacks ``N`` CONV-RELU pairs with ``width * growth**(i-1)``
    filters of size ``F = kernel_size``, stride 1 and padding ``P = F // 2`` ("same":
    :math:`H' = H`), then (if ``pool``) a 2x2 max pool with stride 2 that halves the size. Then
    ``K`` FC-RELU pairs with ``hidden`` units and a last FC layer with ``num_classes`` scores.

    The SOFTMAX of the pattern is not a layer here: it lives in the loss. ``nn.CrossEntropyLoss``
    applies log-softmax to the scores itself, and ``scores.softmax(dim=1)`` gives probabilities.

    The fully connected part needs to know how many numbers the last stage outputs, so the
    network is built for one square ``input_size`` (32, the slides' 32x32x3 images, by default; 8
    for the digits) and rejects other sizes with a ``ValueError``.

    Args:
        in_channels (int): channels ``C`` of the input images.
        num_classes (int): number of output scores.
        n (int): CONV-RELU pairs per stage (``N``). Default: 2
        m (int): stages (``M``). Default: 3
        k (int): hidden FC-RELU pairs (``K``, may be 0). Default: 1
        width (int): filters in the first stage. Default: 32
        input_size (int): side ``H = W`` of the input images. Default: 32
        hidden (int): units of each hidden FC layer. Default: 128
        pool (bool): end each stage with a 2x2 max pool (the ``POOL?``). Default: True
        kernel_size (int): odd filter size ``F``. Default: 3
        growth (int): factor by which the filter count grows from one stage to the next. Default: 2

    Shape:
        - Input: :math:`(N, C, S, S)` with ``S = input_size``.
        - Output: :math:`(N, \text{num\_classes})`, unnormalised scores. The last stage outputs
          ``width * growth**(M-1)`` maps of size :math:`S / 2^M` (with pooling) that are flattened.

    Example:
        >>> import torch
        >>> from cnnlab.models import convnet
        >>> model = convnet(in_channels=3, num_classes=10, n=1, m=2, k=1, width=8)
        >>> [name for name, _ in model.named_children()]  # doctest: +NORMALIZE_WHITESPACE
        ['conv1_1', 'relu1_1', 'pool1', 'conv2_1', 'relu2_1', 'pool2',
         'flatten', 'fc1', 'relu_fc1', 'scores']
        >>> model(torch.zeros(4, 3, 32, 32)).shape
        torch.Size([4, 10])
    """
    for name, value in [("in_channels", in_channels), ("num_classes", num_classes), ("n", n),
                        ("m", m), ("width", width), ("input_size", input_size),
                        ("hidden", hidden), ("kernel_size", kernel_size), ("growth", growth)]:
        whole_number(name, value, allow_float=False)
    whole_number("k (hidden FC-RELU pairs)", k, 0, allow_float=False)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd so that P = F // 2 keeps the size, got F={kernel_size}"
        )
    if pool and input_size < 2**m:
        raise ValueError(
            f"{m} pooling stages halve a {input_size}x{input_size} input {m} times: "
            f"{input_size} / 2**{m} = {input_size / 2**m:g} < 1; use m <= "
            f"{max(input_size.bit_length() - 1, 0)} or pool=False"
        )

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels, size = in_channels, input_size
    for i in range(1, m + 1):
        filters = width * growth ** (i - 1)
        for j in range(1, n + 1):
            layers[f"conv{i}_{j}"] = nn.Conv2d(channels, filters, kernel_size,
                                               padding=kernel_size // 2)
            layers[f"relu{i}_{j}"] = nn.ReLU()
            channels = filters
        if pool:
            layers[f"pool{i}"] = nn.MaxPool2d(kernel_size=2, stride=2)
            size //= 2  # H' = (H - 2) / 2 + 1 = H / 2, rounded down
    layers["flatten"] = nn.Flatten()  # (N, K, size, size) -> (N, K*size*size)
    features = channels * size * size
    for i in range(1, k + 1):
        layers[f"fc{i}"] = nn.Linear(features, hidden)
        layers[f"relu_fc{i}"] = nn.ReLU()
        features = hidden
    layers["scores"] = nn.Linear(features, num_classes)
    return ConvNet(layers, in_channels=in_channels, input_size=input_size)
