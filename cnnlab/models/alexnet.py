"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), as torchvision builds it."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.shapes import whole_number

from ._checks import check_input, param_dtype


class AlexNet(nn.Module):
    r"""AlexNet, one tower, with torchvision's layer widths (61,100,840 parameters, 1000 classes).

    The 2012 paper split the network over two GPUs (48 + 48 filters in CONV1, and so on) and used
    local response normalisation. Like torchvision, this version follows Krizhevsky's 2014 "One
    weird trick" paper: one tower with 64, 192, 384, 256, 256 filters, no normalisation, and an
    adaptive average pool to 6x6 so that inputs other than 224x224 still reach the classifier.

    ============  ====================================  ====================
    layer         what                                  output at 224x224
    ============  ====================================  ====================
    CONV1         64 filters 11x11, S=4, P=2        64 @ 55x55
    POOL1         3x3, S=2                              64 @ 27x27
    CONV2         192 filters 5x5, P=2                  192 @ 27x27
    POOL2         3x3, S=2                              192 @ 13x13
    CONV3-5       384, 256, 256 filters 3x3, P=1        256 @ 13x13
    POOL3         3x3, S=2                              256 @ 6x6
    FC6, FC7      4096, 4096 with dropout               4096
    FC8           num_classes                           num_classes
    ============  ====================================  ====================

    Args:
        num_classes (int): number of output scores. Default: 1000
        in_channels (int): channels ``C`` of the input images. Default: 3
        dropout (float): dropout probability before FC6 and FC7. Default: 0.5

    Shape:
        - Input: :math:`(N, C, H, W)` with :math:`H, W \ge 63` (the smallest size the pooling stack
          keeps at least 1x1); :math:`H' = \lfloor (H + 2P - F) / S \rfloor + 1` at every layer.
        - Output: :math:`(N, \text{num\_classes})`, unnormalised scores.

    Example:
        >>> import torch
        >>> from cnnlab.models import AlexNet
        >>> model = AlexNet(num_classes=10)
        >>> model(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """

    min_size = 63

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        whole_number("num_classes", num_classes, allow_float=False)
        whole_number("in_channels", in_channels, allow_float=False)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),  # (N, 64, 55, 55)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (N, 64, 27, 27)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # (N, 192, 27, 27)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (N, 192, 13, 13)
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # (N, 384, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # (N, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # (N, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (N, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),  # (N, 9216) -> (N, 4096)
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x, model="AlexNet", in_channels=self.in_channels, min_size=self.min_size,
            dtype=param_dtype(self),
        )
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))  # (N, 256, 6, 6) -> (N, 9216) -> scores
