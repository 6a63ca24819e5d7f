"""cnnlab.plot: every helper returns a Figure with the expected panels, leaves pyplot clean."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from cnnlab import plot
from cnnlab.models import convnet
from cnnlab.train import History


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot helper left a pyplot figure open"


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison]


def test_training_curves_from_history_and_dict():
    h = History(train_loss=[1.0, 0.5, 0.3], train_acc=[0.5, 0.8, 0.9],
                val_loss=[1.1, 0.7, 0.6], val_acc=[0.4, 0.7, 0.8])
    fig = plot.training_curves(h)
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "val"]
    np.testing.assert_array_equal(acc_ax.lines[1].get_ydata(), h.val_acc)
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])
    only_train = plot.training_curves({"train_loss": [1.0], "train_acc": [0.5]})
    assert len(only_train.axes[0].lines) == 1
    with pytest.raises(ValueError, match="train_acc"):
        plot.training_curves({"train_loss": [1.0]})


def test_confusion_matrix_figure():
    cm = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 6]])
    fig = plot.confusion_matrix(cm, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)
    fig = plot.confusion_matrix(cm, normalize=True)
    assert fig.axes[0].texts[0].get_text() == f"{5 / 6:.2f}"
    with pytest.raises(ValueError, match="square"):
        plot.confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 names for a 3x3"):
        plot.confusion_matrix(cm, class_names=["a", "b"])


def test_filters_rgb_grey_and_conv_module():
    w = torch.randn(10, 3, 5, 5)
    fig = plot.filters(w, ncols=5)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 10 and len(shown) == 10
    assert shown[0].images[0].get_array().shape == (5, 5, 3)
    grey = plot.filters(w, channel=2)
    np.testing.assert_allclose(grey.axes[3].images[0].get_array(), w[3, 2].numpy())
    model = convnet(1, 10, n=1, m=1, k=0, width=6, input_size=8)
    assert len([ax for ax in plot.filters(model.conv1_1).axes if ax.images]) == 6
    with pytest.raises(ValueError, match=r"\(K, C, F, F\)"):
        plot.filters(torch.zeros(3, 3, 3))
    with pytest.raises(ValueError, match="channel must be in 0..2"):
        plot.filters(w, channel=3)


def test_activation_maps_and_capture():
    torch.manual_seed(0)
    model = convnet(1, 10, n=1, m=1, k=0, width=5, input_size=8).train()
    x = torch.randn(2, 1, 8, 8)
    maps = plot.capture_activations(model, model.relu1_1, x)
    assert maps.shape == (2, 5, 8, 8)
    torch.testing.assert_close(maps, torch.relu(model.conv1_1(x)).detach())
    assert model.training  # mode restored
    fig = plot.activation_maps(maps, ncols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5 and len(fig.axes) == 6
    np.testing.assert_allclose(shown[4].images[0].get_array(), maps[0, 4].numpy())
    assert len([ax for ax in plot.activation_maps(maps, max_maps=2).axes if ax.images]) == 2
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        plot.activation_maps(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="not a submodule"):
        plot.capture_activations(model, torch.nn.ReLU(), x)
