"""cnnlab.models: parameter counts, output shapes, the pattern builder, input checks, summary."""


import pytest
import torch
from torch import nn

from cnnlab.models import (
    VGG,
    AlexNet,
    BasicBlock,
    GoogLeNet,
    Inception,
    LeNet5,
    ResNet,
    convnet,
    resnet18,
    resnet34,
    summary,
    vgg11,
    vgg16,
)

# Published parameter counts of torchvision's reference models for 1000 classes, from the
# ``num_params`` entry of each weights table in the torchvision documentation
# (https://pytorch.org/vision/stable/models/generated/torchvision.models.<name>.html,
# IMAGENET1K_V1).
# GoogLeNet's is for the model without its auxiliary heads (the weights ship without them).
TORCHVISION_NUM_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "googlenet": 6_624_904,
}

BUILDERS = {
    "alexnet": AlexNet,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "googlenet": GoogLeNet,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_parameter_count_equals_torchvision(name):
    assert n_params(BUILDERS[name](num_classes=1000)) == TORCHVISION_NUM_PARAMS[name]


def test_lenet5_parameter_count_by_layer():
    # C1 6*(1*5*5+1), C3 16*(6*5*5+1) (full connectivity), C5 120*(16*5*5+1),
    # F6 84*(120+1), output 10*(84+1)
    expected = 6 * 26 + 16 * 151 + 120 * 401 + 84 * 121 + 10 * 85
    assert n_params(LeNet5()) == expected == 61_706


def test_num_classes_changes_only_the_last_layer():
    assert n_params(resnet18(num_classes=10)) == TORCHVISION_NUM_PARAMS["resnet18"] - 990 * 513


def test_in_channels_changes_only_the_first_layer():
    # AlexNet CONV1: 64 filters of 11x11 per input channel
    assert n_params(AlexNet(in_channels=1)) == TORCHVISION_NUM_PARAMS["alexnet"] - 2 * 64 * 11 * 11


def test_googlenet_aux_heads_add_parameters_and_outputs():
    model = GoogLeNet(num_classes=10, aux_logits=True)
    # each head: CONV 1x1 (C_in*128, no bias) + BN(128) + FC 2048->1024 + FC 1024->10
    heads = sum(c * 128 + 256 + 2048 * 1024 + 1024 + 1024 * 10 + 10 for c in (512, 528))
    assert n_params(model) == n_params(GoogLeNet(num_classes=10)) + heads
    model.train()
    out = model(torch.zeros(2, 3, 64, 64))
    assert isinstance(out, tuple) and [o.shape for o in out] == [torch.Size([2, 10])] * 3
    model.eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


def test_inception_large_kernel_5_is_the_papers_module():
    paper = Inception(192, 64, 96, 128, 16, 32, 32, large_kernel=5)
    tv = Inception(192, 64, 96, 128, 16, 32, 32)
    assert n_params(paper) - n_params(tv) == 16 * 32 * (25 - 9)
    assert paper(torch.zeros(1, 192, 7, 7)).shape == (1, 256, 7, 7)


# Native input sizes; one image each (the big ones at 224 are the slow part, kept to batch 1).
@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: LeNet5(), (2, 1, 32, 32)),
        (lambda: LeNet5(num_classes=7, in_channels=3), (2, 3, 32, 32)),
        (lambda: AlexNet(num_classes=7), (1, 3, 224, 224)),
        (lambda: vgg11(num_classes=7), (1, 3, 224, 224)),
        (lambda: resnet18(num_classes=7), (1, 3, 224, 224)),
        (lambda: resnet34(num_classes=7, in_channels=1), (1, 1, 224, 224)),
        (lambda: GoogLeNet(num_classes=7), (1, 3, 224, 224)),
    ],
)
def test_output_shape_at_native_size(build, shape):
    model = build().eval()
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], model.num_classes)


def test_vgg16_output_shape_small_input():
    model = vgg16(num_classes=5, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 5)


def test_intermediate_shapes_at_224():
    """The sizes quoted in the docstrings (and the slides) at 224x224."""
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        assert AlexNet().features(x).shape == (1, 256, 6, 6)
        r = resnet18().eval()
        x56 = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        assert x56.shape == (1, 64, 56, 56)
        assert r.layer4(r.layer3(r.layer2(r.layer1(x56)))).shape == (1, 512, 7, 7)


def test_lenet5_layer_sizes_follow_the_paper():
    """C1 6@28x28, S2 6@14x14, C3 16@10x10, S4 16@5x5, C5 120@1x1, F6 84, output 10."""
    model = LeNet5()
    x = torch.zeros(1, 1, 32, 32)
    shapes = []
    for layer in list(model.features) + list(model.classifier):
        x = layer(x)
        if not isinstance(layer, (nn.Tanh, nn.Flatten)):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1), (84,), (10,)]


@pytest.mark.parametrize(
    "cls", [LeNet5, AlexNet, VGG, ResNet, BasicBlock, GoogLeNet, Inception, convnet, summary]
)
def test_docstrings_are_pytorch_style(cls):
    doc = cls.__doc__
    assert ">>>" in doc and "Args:" in doc, cls.__name__
    if cls is not summary:
        assert "Shape:" in doc and "Default:" in doc, cls.__name__


def test_basic_block_shortcut():
    assert BasicBlock(64, 64).downsample is None
    block = BasicBlock(64, 128, stride=2)
    assert block.downsample is not None
    assert block(torch.zeros(1, 64, 8, 8)).shape == (1, 128, 4, 4)
    # The identity shortcut: with F(x) = 0 (zeroed last BN), the block is relu(x).
    block = BasicBlock(4, 4).eval()
    nn.init.zeros_(block.bn2.weight)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_resnet_custom_layers():
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3, in_channels=2)
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [1] * 4
    with pytest.raises(ValueError, match="4 stages"):
        ResNet(BasicBlock, [2, 2, 2])


# --- inputs a model cannot take -------------------------------------------------------------

@pytest.mark.parametrize(
    "model, x, match",
    [
        (LeNet5(), torch.zeros(1, 3, 32, 32), r"in_channels=1.*C=3"),
        (LeNet5(), torch.zeros(1, 1, 28, 28), r"32x32.*28x28"),
        (LeNet5(), torch.zeros(1, 32, 32), r"\(N, C, H, W\).*3-d"),
        (AlexNet(num_classes=2), torch.zeros(1, 1, 224, 224), r"in_channels=3.*C=1"),
        (VGG([8, "M", 8, "M"], num_classes=2, hidden=8), torch.zeros(1, 3, 3, 3), r"at least 4x4"),
        (resnet18(num_classes=2, in_channels=1), torch.zeros(1, 3, 32, 32), "in_channels=1"),
        (GoogLeNet(num_classes=2), torch.zeros(1, 3, 14, 14), r"at least 15x15.*14x14"),
        (convnet(3, 10, m=2, input_size=32), torch.zeros(1, 3, 28, 28), r"32x32.*28x28"),
        (Inception(16, 4, 4, 4, 4, 4, 4), torch.zeros(1, 8, 5, 5), "in_channels=16"),
        (LeNet5(), torch.zeros(1, 1, 32, 32, dtype=torch.float64),
         r"torch.float32, but the input is torch.float64.*x.to\(torch.float32\)"),
        (convnet(3, 10, m=2), torch.zeros(1, 3, 32, 32, dtype=torch.uint8), r"x.float\(\) / 255"),
    ],
)
def test_bad_input_raises_value_error_that_says_what_it_expects(model, x, match):
    with pytest.raises(ValueError, match=match):
        model(x)


@pytest.mark.parametrize(
    "model, size",
    [
        (AlexNet(num_classes=2), 63),
        (vgg11(num_classes=2, hidden=8), 32),
        (GoogLeNet(num_classes=2), 15),
    ],
)
def test_min_size_is_the_true_minimum(model, size):
    """At min_size the model runs; one pixel less, our check fires (PyTorch would fail too)."""
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 2)
        with pytest.raises(ValueError, match=f"at least {size}x{size}"):
            model(torch.zeros(1, 3, size - 1, size - 1))
        # without our check, PyTorch's own machinery rejects size - 1 as well
        with pytest.raises(RuntimeError):
            nn.Module.__call__(_Unchecked(model), torch.zeros(1, 3, size - 1, size - 1))


class _Unchecked(nn.Module):
    """Runs a model's layers without its forward's input check (to prove min_size is tight)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        m = self.model
        if isinstance(m, GoogLeNet):
            x = m.maxpool2(m.conv3(m.conv2(m.maxpool1(m.conv1(x)))))
            x = m.maxpool3(m.inception3b(m.inception3a(x)))
            x = m.inception4d(m.inception4c(m.inception4b(m.inception4a(x))))
            return m.inception5b(m.inception5a(m.maxpool4(m.inception4e(x))))
        return m.features(x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: LeNet5(num_classes=0), "num_classes"),
        (lambda: LeNet5(pool="median"), "pool"),
        (lambda: VGG("Z"), "config"),
        (lambda: VGG([64, "X"]), "'X'"),
        (lambda: VGG(["M"]), "no convolution"),
        (lambda: AlexNet(in_channels=0), "in_channels"),
        (lambda: Inception(8, 1, 1, 1, 1, 1, 1, large_kernel=4), "odd"),
        (lambda: convnet(3, 10, m=6, input_size=32), r"32 / 2\*\*6"),
        (lambda: convnet(3, 10, k=-1), "k"),
        (lambda: convnet(3, 10, kernel_size=2), "odd"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- the slides' pattern ----------------------------------------------------------------------

def test_convnet_layer_sequence_follows_the_pattern():
    model = convnet(3, 10, n=2, m=3, k=2, width=4, input_size=32, hidden=16)
    letter = {nn.Conv2d: "C", nn.ReLU: "R", nn.MaxPool2d: "P", nn.Flatten: "", nn.Linear: "F"}
    kinds = "".join(letter[type(layer)] for layer in model)
    assert kinds == "CRCRP" * 3 + "FR" * 2 + "F"
    convs = [layer for layer in model if isinstance(layer, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8, 16, 16]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    fcs = [layer for layer in model if isinstance(layer, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(16 * 4 * 4, 16), (16, 16), (16, 10)]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_convnet_without_pool_and_without_hidden_fc():
    model = convnet(1, 10, n=1, m=2, k=0, width=3, input_size=8, pool=False, growth=1)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten", "Linear"]
    assert model.scores.in_features == 3 * 8 * 8
    assert not any(isinstance(layer, nn.Softmax) for layer in model)  # the softmax is in the loss


# --- summary ----------------------------------------------------------------------------------

def test_summary_rows_and_totals_match_the_model():
    model = convnet(3, 10, n=1, m=2, k=1, width=8, hidden=32)
    s = summary(model, (3, 32, 32), depth=1)
    assert s.total_params == n_params(model) == s.trainable_params
    assert [r.name for r in s.rows] == [name for name, _ in model.named_children()]
    by_name = {r.name: r for r in s.rows}
    assert by_name["conv1_1"].output_shape == (1, 8, 32, 32)
    assert by_name["pool2"].output_shape == (1, 16, 8, 8)
    assert by_name["conv2_1"].num_params == 16 * 8 * 9 + 16
    assert sum(r.num_params for r in s.rows) == s.total_params
    assert "conv1_1" in str(s) and "Total params" in str(s) and "Units." not in str(s)


def test_summary_of_a_float64_model():
    model = LeNet5().double()
    assert summary(model, (1, 32, 32)).total_params == 61_706


def test_summary_restores_training_mode_and_checks_input(capsys):
    model = LeNet5().train()
    summary(model, (2, 1, 32, 32))
    assert model.training
    assert capsys.readouterr().out == ""
    summary(model, (1, 32, 32), verbose=True)
    assert "Total params: 61,706" in capsys.readouterr().out
    with pytest.raises(ValueError, match="in_channels=1"):
        summary(model, (3, 32, 32))
    with pytest.raises(ValueError, match="input_shape"):
        summary(model, (32, 32))
