"""VGGNet (Simonyan and Zisserman 2014): only 3x3 convolutions (S=1, P=1) and 2x2 max pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.shapes import whole_number

from ._checks import check_input, param_dtype

#: The paper's configurations: an int is a 3x3 CONV-RELU with that many filters, "M" a 2x2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],  # VGG19
}


class VGG(nn.Module):
    r"""VGGNet from a configuration: filter counts (3x3 CONV-RELU) and ``"M"`` (2x2 max pool).

    Every convolution has ``F = 3, S = 1, P = 1`` and keeps the spatial size
    (:math:`H' = (H + 2 - 3) / 1 + 1 = H`); every pool halves it. After the features, an adaptive
    average pool to 7x7 (a no-op at 224x224, as in torchvision) feeds FC-4096, FC-4096,
    FC-num_classes.

    Args:
        config (str or list): ``"A"`` (VGG11), ``"B"`` (VGG13), ``"D"`` (VGG16), ``"E"``
            (VGG19), or your own list such as ``[64, "M", 128, "M"]``. Default: ``"D"``
        num_classes (int): number of output scores. Default: 1000
        in_channels (int): channels ``C`` of the input images. Default: 3
        dropout (float): dropout probability after FC6 and FC7. Default: 0.5
        hidden (int): width of the two hidden fully connected layers. Default: 4096

    Shape:
        - Input: :math:`(N, C, H, W)` with :math:`H, W \ge 2^{p}` for ``p`` pools (32 for the
          paper's configurations).
        - Output: :math:`(N, \text{num\_classes})`, unnormalised scores.

    Example:
        >>> import torch
        >>> from cnnlab.models import VGG
        >>> model = VGG([16, "M", 32, "M"], num_classes=10, in_channels=1, hidden=64)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        config: str | Sequence[int | str] = "D",
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        hidden: int = 4096,
    ) -> None:
        super().__init__()
        whole_number("num_classes", num_classes, allow_float=False)
        whole_number("in_channels", in_channels, allow_float=False)
        whole_number("hidden", hidden, allow_float=False)
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ValueError(
                    f"config must be one of {sorted(CONFIGS)} or a list, got {config!r}"
                )
            config = CONFIGS[config]
        layers: list[nn.Module] = []
        channels = in_channels
        pools = 0
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                pools += 1
            elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
                layers.append(nn.Conv2d(channels, item, kernel_size=3, padding=1))
                layers.append(nn.ReLU(inplace=True))
                channels = item
            else:
                raise ValueError(f"config entries must be positive ints or 'M', got {item!r}")
        if not any(isinstance(m, nn.Conv2d) for m in layers):
            raise ValueError(f"config {list(config)!r} has no convolution")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.min_size = 2**pools
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, hidden),  # (N, K*7*7) -> (N, hidden)
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x, model="VGG", in_channels=self.in_channels, min_size=self.min_size,
            dtype=param_dtype(self),
        )
        x = self.avgpool(self.features(x))  # (N, K, 7, 7)
        return self.classifier(torch.flatten(x, 1))  # (N, K*7*7) -> scores


def vgg11(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG11 (configuration A: 8 conv + 3 FC layers); 132,863,336 parameters for 1000 classes.

    Example:
        >>> from cnnlab.models import vgg11
        >>> sum(p.numel() for p in vgg11().parameters())
        132863336
    """
    return VGG("A", num_classes=num_classes, in_channels=in_channels, **kwargs)


def vgg16(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG16 (configuration D: 13 conv + 3 FC layers); 138,357,544 parameters for 1000 classes.

    Example:
        >>> from cnnlab.models import vgg16
        >>> model = vgg16(num_classes=10)
        >>> model.classifier[-1]
        Linear(in_features=4096, out_features=10, bias=True)
    """
    return VGG("D", num_classes=num_classes, in_channels=in_channels, **kwargs)
