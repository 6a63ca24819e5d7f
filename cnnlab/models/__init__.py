"""PyTorch architectures of the course, the slides' pattern builder, and a model summary.

Every model takes ``num_classes`` and ``in_channels``, returns unnormalised scores (the softmax
lives in ``nn.CrossEntropyLoss``), and rejects inputs it cannot take with a ``ValueError`` that says
what it expects.
"""

from .alexnet import AlexNet
from .googlenet import GoogLeNet, Inception
from .lenet import LeNet5
from .pattern import ConvNet, convnet
from .resnet import BasicBlock, ResNet, resnet18, resnet34
from .summary import LayerRow, ModelSummary, summary
from .vgg import VGG, vgg11, vgg16

__all__ = [
    "AlexNet",
    "BasicBlock",
    "ConvNet",
    "GoogLeNet",
    "Inception",
    "LayerRow",
    "LeNet5",
    "ModelSummary",
    "ResNet",
    "VGG",
    "convnet",
    "resnet18",
    "resnet34",
    "summary",
    "vgg11",
    "vgg16",
]
