"""ResNet (He, Zhang, Ren, Sun 2015) with basic blocks: ResNet-18 and ResNet-34."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.shapes import whole_number

from ._checks import check_input, param_dtype


class BasicBlock(nn.Module):
    r"""The residual block of ResNet-18/34: ``relu(F(x) + shortcut(x))``.

    ``F`` is CONV 3x3 (stride ``stride``) - BN - RELU - CONV 3x3 - BN. The shortcut is the
    identity, or, when the block changes the size or the channel count, a 1x1 convolution with
    stride ``stride`` followed by BN (the paper's option B), so that the two can be added.

    Args:
        in_channels (int): channels of the block's input.
        out_channels (int): channels of its output (``K``).
        stride (int): stride of the first convolution and of the shortcut. Default: 1

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, K, H', W')` with :math:`H' = (H + 2 - 3) / S + 1` rounded down.

    Example:
        >>> import torch
        >>> from cnnlab.models import BasicBlock
        >>> block = BasicBlock(64, 128, stride=2)
        >>> block(torch.zeros(1, 64, 56, 56)).shape
        torch.Size([1, 128, 28, 28])
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        whole_number("in_channels", in_channels, allow_float=False)
        whole_number("out_channels", out_channels, allow_float=False)
        whole_number("stride", stride, allow_float=False)
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, model="BasicBlock", in_channels=self.in_channels)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)  # the residual connection: F(x) + x


class ResNet(nn.Module):
    r"""ResNet: a 7x7/2 stem, 3x3/2 max pool, four stages of residual blocks, global pool, FC.

    ========  ==========================================  ====================
    stage     what                                        output at 224x224
    ========  ==========================================  ====================
    stem      CONV 7x7, 64, S=2, P=3 - BN - RELU - POOL   64 @ 56x56
    layer1    ``layers[0]`` blocks, 64 filters             64 @ 56x56
    layer2    ``layers[1]`` blocks, 128, first S=2         128 @ 28x28
    layer3    ``layers[2]`` blocks, 256, first S=2         256 @ 14x14
    layer4    ``layers[3]`` blocks, 512, first S=2         512 @ 7x7
    head      global average pool, FC                     num_classes
    ========  ==========================================  ====================

    The layout and initialisation follow torchvision (Kaiming normal for convolutions; BN weight 1,
    bias 0), so parameter counts equal torchvision's: 11,689,512 (ResNet-18) and 21,797,672
    (ResNet-34) for 1000 classes.

    Args:
        block (type): the residual block class. Default: :class:`BasicBlock`
        layers (sequence of 4 ints): blocks per stage, ``[2, 2, 2, 2]`` for ResNet-18,
            ``[3, 4, 6, 3]`` for ResNet-34. Default: ``(2, 2, 2, 2)``
        num_classes (int): number of output scores. Default: 1000
        in_channels (int): channels ``C`` of the input images. Default: 3

    Shape:
        - Input: :math:`(N, C, H, W)`, any :math:`H, W \ge 1` (the global pool takes any size).
        - Output: :math:`(N, \text{num\_classes})`, unnormalised scores.

    Example:
        >>> import torch
        >>> from cnnlab.models import ResNet, BasicBlock
        >>> model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        block: type[BasicBlock] = BasicBlock,
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        whole_number("num_classes", num_classes, allow_float=False)
        whole_number("in_channels", in_channels, allow_float=False)
        if len(layers) != 4:
            raise ValueError(f"layers must list the blocks of 4 stages, got {list(layers)!r}")
        for n in layers:
            whole_number("each entry of layers", n, allow_float=False)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = (64, 128, 256, 512)
        channels = 64
        stages = []
        for i, (width, n) in enumerate(zip(widths, layers, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [block(channels, width, stride)]
            channels = width * block.expansion
            blocks += [block(channels, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(
            x, model="ResNet", in_channels=self.in_channels,
            dtype=param_dtype(self),
        )
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512, H/32, W/32)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 512, 1, 1) -> (N, 512)
        return self.fc(x)


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18: basic blocks ``[2, 2, 2, 2]``; 11,689,512 parameters for 1000 classes.

    Example:
        >>> from cnnlab.models import resnet18
        >>> sum(p.numel() for p in resnet18().parameters())
        11689512
    """
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels)


def resnet34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-34: basic blocks ``[3, 4, 6, 3]``; 21,797,672 parameters for 1000 classes.

    Example:
        >>> from cnnlab.models import resnet34
        >>> len(resnet34().layer3)
        6
    """
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels)
