"""GoogLeNet / Inception v1 (Szegedy et al. 2014), laid out as torchvision builds it."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.shapes import whole_number

from ._checks import check_input, param_dtype


class ConvBNReLU(nn.Sequential):
    """CONV (no bias) - BatchNorm - RELU, GoogLeNet's unit (torchvision's ``BasicConv2d``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs),
            nn.BatchNorm2d(out_channels, eps=0.001),
            nn.ReLU(inplace=True),
        )


class Inception(nn.Module):
    r"""The Inception module: four parallel branches concatenated along the channels.

    =========  ==================================================  ===============
    branch     what                                                channels out
    =========  ==================================================  ===============
    1          CONV 1x1                                            ``ch1x1``
    2          CONV 1x1 (reduce) - CONV 3x3, P=1                    ``ch3x3``
    3          CONV 1x1 (reduce) - CONV FxF, P=F//2                 ``ch5x5``
    4          MAX POOL 3x3, S=1, P=1 - CONV 1x1 (projection)       ``pool_proj``
    =========  ==================================================  ===============

    Every branch keeps ``H x W``, so the outputs stack to ``ch1x1 + ch3x3 + ch5x5 + pool_proj``
    channels. The 1x1 "reduce" convolutions are the point of the design: they shrink the channels
    before the expensive 3x3 and 5x5 filters.

    The paper's third branch uses F=5. torchvision's GoogLeNet (whose parameter count,
    6,624,904, the course reproduces) uses F=3 there, a long-standing quirk kept for its pretrained
    weights; that is the default here. Pass ``large_kernel=5`` for the paper's module.

    Args:
        in_channels (int): channels of the input.
        ch1x1 (int): filters of branch 1.
        ch3x3red (int): 1x1 filters reducing the input of the 3x3 convolution.
        ch3x3 (int): filters of the 3x3 convolution.
        ch5x5red (int): 1x1 filters reducing the input of branch 3.
        ch5x5 (int): filters of branch 3's large convolution.
        pool_proj (int): 1x1 filters after the max pool.
        large_kernel (int): odd filter size ``F`` of branch 3. Default: 3

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, ch1x1 + ch3x3 + ch5x5 + pool\_proj, H, W)`

    Example:
        >>> import torch
        >>> from cnnlab.models import Inception
        >>> module = Inception(192, 64, 96, 128, 16, 32, 32)  # inception (3a)
        >>> module(torch.zeros(1, 192, 28, 28)).shape
        torch.Size([1, 256, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        large_kernel: int = 3,
    ) -> None:
        super().__init__()
        for name, value in [("in_channels", in_channels), ("ch1x1", ch1x1), ("ch3x3red", ch3x3red),
                            ("ch3x3", ch3x3), ("ch5x5red", ch5x5red), ("ch5x5", ch5x5),
                            ("pool_proj", pool_proj), ("large_kernel", large_kernel)]:
            whole_number(name, value, allow_float=False)
        if large_kernel % 2 == 0:
            raise ValueError(
                f"large_kernel must be odd so that P = F // 2 keeps H x W, got F={large_kernel}"
            )
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = ConvBNReLU(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            ConvBNReLU(in_channels, ch3x3red, kernel_size=1),
            ConvBNReLU(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            ConvBNReLU(in_channels, ch5x5red, kernel_size=1),
            ConvBNReLU(ch5x5red, ch5x5, kernel_size=large_kernel, padding=large_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBNReLU(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, model="Inception", in_channels=self.in_channels)
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # 4 x (N, K_i, H, W) -> (N, sum K_i, H, W)


class InceptionAux(nn.Module):
    """An auxiliary classifier head: 4x4 average pool, CONV 1x1 (128), FC 1024, dropout 0.7, FC."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = ConvBNReLU(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)  # (N, 128, 4, 4) -> (N, 2048)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    r"""GoogLeNet (Inception v1): a stem, nine Inception modules, global average pool, one FC layer.

    No large fully connected layers: after inception (5b) a global average pool turns
    ``(N, 1024, 7, 7)`` into ``(N, 1024)``, and a single FC layer gives the scores. That is why
    it has about 9 times fewer parameters than AlexNet (6,624,904 for 1000 classes, without the
    auxiliary heads, as torchvision counts it).

    Args:
        num_classes (int): number of output scores. Default: 1000
        in_channels (int): channels ``C`` of the input images. Default: 3
        aux_logits (bool): add the two auxiliary classifiers (after 4a and 4d); in training mode the
            forward pass then returns ``(scores, aux1, aux2)``. Default: False
        dropout (float): dropout probability before the final FC layer. Default: 0.2
        large_kernel (int): filter size of the third Inception branch, 3 as in torchvision
            or 5 as in the paper (see :class:`Inception`). Default: 3

    Shape:
        - Input: :math:`(N, C, H, W)` with :math:`H, W \ge 15`; at 224x224 the stem brings the
          size to 28x28, and the pools (3x3, S=2, rounding up) to 14x14 and 7x7.
        - Output: :math:`(N, \text{num\_classes})`, unnormalised scores.

    Example:
        >>> import torch
        >>> from cnnlab.models import GoogLeNet
        >>> model = GoogLeNet(num_classes=10).eval()
        >>> model(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 10])
        >>> sum(p.numel() for p in GoogLeNet().parameters())
        6624904
    """

    min_size = 15

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        dropout: float = 0.2,
        large_kernel: int = 3,
    ) -> None:
        super().__init__()
        whole_number("num_classes", num_classes, allow_float=False)
        whole_number("in_channels", in_channels, allow_float=False)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        k = large_kernel

        self.conv1 = ConvBNReLU(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBNReLU(64, 64, kernel_size=1)
        self.conv3 = ConvBNReLU(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, k)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, k)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, k)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, k)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, k)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, k)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, k)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, k)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, k)

        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        check_input(
            x, model="GoogLeNet", in_channels=self.in_channels, min_size=self.min_size,
            dtype=param_dtype(self),
        )
        x = self.maxpool1(self.conv1(x))  # 224 -> 112 -> 56
        x = self.maxpool2(self.conv3(self.conv2(x)))  # 56 -> 28, (N, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (N, 480, 14, 14)
        x = self.inception4a(x)  # (N, 512, 14, 14)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (N, 528, 14, 14)
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))  # (N, 832, 7, 7)
        x = self.inception5b(self.inception5a(x))  # (N, 1024, 7, 7)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 1024)
        scores = self.fc(self.dropout(x))
        if aux1 is not None and aux2 is not None:
            return scores, aux1, aux2
        return scores
