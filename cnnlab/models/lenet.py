"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), the first stop of the architecture tour."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.shapes import whole_number

from ._checks import check_input, param_dtype


class LeNet5(nn.Module):
    r"""LeNet-5 with the 1998 paper's layer sizes, on 32x32 inputs.

    ======  ===========================  ==============
    layer   what                         output
    ======  ===========================  ==============
    C1      conv 5x5, 6 filters          6 @ 28x28
    S2      2x2 pooling, stride 2        6 @ 14x14
    C3      conv 5x5, 16 filters         16 @ 10x10
    S4      2x2 pooling, stride 2        16 @ 5x5
    C5      conv 5x5, 120 filters        120 @ 1x1
    F6      fully connected              84
    output  fully connected              num_classes
    ======  ===========================  ==============

    Simplifications of the paper, as most modern re-implementations make them:

    * C3 is fully connected to S2's 6 maps (the paper wires each of its 16 maps to a hand-picked
      subset of 3, 4 or 6 maps to break symmetry and save parameters: 1,516 weights there,
      2,416 here).
    * S2 and S4 are plain average pooling (``pool="avg"``, the default) or max pooling
      (``pool="max"``); the paper's subsampling also had one trainable coefficient and bias per map
      followed by a sigmoid.
    * The activation is ``tanh`` (the paper used the scaled ``1.7159 tanh(2x/3)``);
      ``activation="relu"`` gives the modern variant.
    * The output layer is a linear layer producing scores for ``nn.CrossEntropyLoss`` (softmax lives
      in the loss); the paper used Euclidean radial basis function units.

    Args:
        num_classes (int): number of output scores. Default: 10
        in_channels (int): channels ``C`` of the input images. Default: 1
        pool (str): ``"avg"`` or ``"max"`` for S2 and S4. Default: ``"avg"``
        activation (str): ``"tanh"`` or ``"relu"``. Default: ``"tanh"``

    Shape:
        - Input: :math:`(N, C, 32, 32)`; each conv has ``F = 5, S = 1, P = 0``, so
          :math:`H' = (H + 2P - F) / S + 1 = H - 4`, and each pooling halves:
          32 -> 28 -> 14 -> 10 -> 5 -> 1.
        - Output: :math:`(N, \text{num\_classes})`, unnormalised scores.

    Example:
        >>> import torch
        >>> from cnnlab.models import LeNet5
        >>> model = LeNet5()
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
        >>> sum(p.numel() for p in model.parameters())
        61706
    """

    input_size = 32

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        pool: str = "avg",
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        whole_number("num_classes", num_classes, allow_float=False)
        whole_number("in_channels", in_channels, allow_float=False)
        pools = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
        if pool not in pools:
            raise ValueError(f"pool must be one of {sorted(pools)}, got {pool!r}")
        if activation not in acts:
            raise ValueError(f"activation must be one of {sorted(acts)}, got {activation!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        Pool, Act = pools[pool], acts[activation]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1: (N, C, 32, 32) -> (N, 6, 28, 28)
            Act(),
            Pool(kernel_size=2, stride=2),  # S2: -> (N, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # C3: -> (N, 16, 10, 10)
            Act(),
            Pool(kernel_size=2, stride=2),  # S4: -> (N, 16, 5, 5)
            nn.Conv2d(16, 120, kernel_size=5),  # C5: -> (N, 120, 1, 1)
            Act(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, 120, 1, 1) -> (N, 120)
            nn.Linear(120, 84),  # F6
            Act(),
            nn.Linear(84, num_classes),  # output scores
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x, model="LeNet5", in_channels=self.in_channels, exact_size=self.input_size,
            dtype=param_dtype(self),
        )
        return self.classifier(self.features(x))
