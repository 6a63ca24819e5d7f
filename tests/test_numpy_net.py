"""cnnlab.numpy_net: the NumPy CNN equals the same network in PyTorch (loss and every gradient),
its optimizer equals torch.optim.SGD, and training learns the digits."""

import numpy as np
import pytest
import torch

from cnnlab.numpy_net import NumpyCNN, SGDMomentum, train

RTOL = 1e-9  # float64 throughout: NumPy and PyTorch agree to rounding


pytestmark = pytest.mark.usefixtures("one_thread")


def rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b)))


@pytest.fixture(scope="module")
def digits_np(digits):
    """The digits split as NumPy arrays: {"train": [x, y], "val": ..., "test": ...}."""
    parts = ("train", "val", "test")
    return {part: [t.numpy() for t in getattr(digits, part).tensors] for part in parts}


@pytest.fixture(scope="module")
def batch(digits_np):
    x, y = digits_np["train"]
    return x[:32].astype(np.float64), y[:32]


def torch_reference(params, x, y, pad):
    """The same network written directly with torch.nn.functional, from the NumPy weights."""
    F = torch.nn.functional
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.from_numpy(x), p["w1"], p["b1"], padding=pad)), 2, 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["w2"], p["b2"], padding=pad)), 2, 2)
    scores = F.linear(h.flatten(1), p["w3"], p["b3"])  # (N, K2*S/4*S/4) -> (N, M)
    loss = F.cross_entropy(scores, torch.from_numpy(y))
    loss.backward()
    return scores.detach().numpy(), loss.item(), {k: t.grad.numpy() for k, t in p.items()}


@pytest.mark.parametrize("kwargs", [{}, {"k1": 4, "k2": 6, "filter_size": 5}])
def test_same_loss_and_gradients_as_pytorch(batch, kwargs):
    x, y = batch
    net = NumpyCNN(seed=1, dtype=np.float64, **kwargs)
    loss, grads = net.loss(x, y)
    scores, torch_loss, torch_grads = torch_reference(net.params, x, y, net.pad)

    np.testing.assert_allclose(net.forward(x)[0], scores, rtol=RTOL, atol=1e-12)
    assert loss == pytest.approx(torch_loss, rel=RTOL)
    for name, g in torch_grads.items():
        assert grads[name].shape == g.shape, name
        assert rel_error(grads[name], g) < 1e-7, name


def test_to_torch_builds_the_same_network(batch):
    x, _ = batch
    net = NumpyCNN(seed=3, dtype=np.float64)
    model = net.to_torch()
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, net.forward(x)[0], rtol=RTOL, atol=1e-12)
    assert sum(p.numel() for p in model.parameters()) == sum(p.size for p in net.params.values())


def test_gradient_against_central_differences():
    """A second, independent check of the backward pass on a few weights. Random inputs and
    biases: the digits' blank background puts ReLU inputs exactly at the kink and ties in the
    pools, where a central difference is not the gradient."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 1, 8, 8)), np.array([0, 3, 5, 9])
    net = NumpyCNN(k1=3, k2=4, seed=2, dtype=np.float64)
    for name in ("b1", "b2", "b3"):
        net.params[name][:] = rng.normal(scale=0.1, size=net.params[name].shape)
    _, grads = net.loss(x, y)
    h = 1e-6
    for name in ("w1", "b1", "w2", "w3", "b3"):
        p = net.params[name]
        for flat in rng.choice(p.size, size=3, replace=False):
            i = np.unravel_index(flat, p.shape)
            old = p[i]
            p[i] = old + h
            plus = net.loss(x, y)[0]
            p[i] = old - h
            minus = net.loss(x, y)[0]
            p[i] = old
            numeric = (plus - minus) / (2 * h)
            assert abs(numeric - grads[name][i]) <= 1e-6 + 1e-5 * abs(numeric), (name, i)


def test_sgd_momentum_equals_torch_sgd():
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = SGDMomentum(params, lr=0.1, momentum=0.9, weight_decay=0.01)
    topt = torch.optim.SGD(tparams.values(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(4):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        for k, t in tparams.items():
            t.grad = torch.from_numpy(grads[k].copy())
        opt.step(grads)
        topt.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12)


def test_training_learns_the_digits(digits_np):
    (x, y), (xv, yv) = digits_np["train"], digits_np["val"]
    net = NumpyCNN(k1=8, k2=16, seed=0)
    before = float((net.predict(xv) == yv).mean())
    history = train(net, x, y, xv, yv, epochs=3, lr=0.05, batch_size=32, seed=0)
    assert len(history["train_loss"]) == 3 and len(history["val_acc"]) == 3
    assert before < 0.3
    assert history["val_acc"][-1] > 0.8  # chance is 0.1
    assert history["val_acc"][-1] == pytest.approx(float((net.predict(xv) == yv).mean()))
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_training_is_repeatable(digits_np):
    x, y = digits_np["train"]
    runs = [train(NumpyCNN(k1=4, k2=4, seed=5), x[:200], y[:200], epochs=1, seed=7)
            for _ in range(2)]
    assert runs[0]["train_loss"] == runs[1]["train_loss"]


def test_verbose_prints_one_line_per_epoch_on_stdout(digits_np, capfd):
    x, y = digits_np["train"]
    train(NumpyCNN(k1=2, k2=2), x[:64], y[:64], epochs=2)
    assert capfd.readouterr() == ("", "")
    train(NumpyCNN(k1=2, k2=2), x[:64], y[:64], epochs=2, verbose=True)
    out, err = capfd.readouterr()
    assert len(out.splitlines()) == 2 and err == ""


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: NumpyCNN(input_size=10), "divisible by 4"),
        (lambda: NumpyCNN(filter_size=4), "odd"),
        (lambda: NumpyCNN(k1=0), "k1"),
        (lambda: NumpyCNN().forward(np.zeros((2, 3, 8, 8))), r"\(N, 1, 8, 8\).*\(2, 3, 8, 8\)"),
        (lambda: SGDMomentum({"w": np.zeros(2)}, lr=0), "lr"),
        (lambda: SGDMomentum({"w": np.zeros(2)}, momentum=1.0), "momentum"),
        (lambda: SGDMomentum({"w": np.zeros(2)}).step({}), "lacks"),
        (lambda: train(NumpyCNN(), np.zeros((3, 1, 8, 8)), np.zeros(2, dtype=int)), "as many"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_random_shift_equals_the_torch_one_for_the_same_offsets():
    from cnnlab.numpy_net import random_shift

    x = np.random.default_rng(0).random((10, 2, 5, 7))
    out = random_shift(x, max_shift=1, rng=np.random.default_rng(1))
    dy, dx = np.random.default_rng(1).integers(0, 3, size=(2, 10))  # the offsets it drew
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n in range(10):
        np.testing.assert_array_equal(out[n], padded[n, :, dy[n] : dy[n] + 5, dx[n] : dx[n] + 7])
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(x, max_shift=-2, rng=np.random.default_rng())
