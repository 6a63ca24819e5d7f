"""A CNN in NumPy alone: conv-relu-pool, conv-relu-pool, linear, trained with SGD with momentum.

Built only from the course's own layers in :mod:`cnnlab.nn` (the convolutions from its tuned
:mod:`cnnlab.nn.fast`); PyTorch appears only in
:meth:`NumpyCNN.to_torch`, which builds the same network to check it against.

The network, for images ``x: (N, C, S, S)`` (``S`` divisible by 4)::

    conv1  F x F, K1 filters, stride 1, P = F // 2   (N, K1, S, S)
    relu
    pool1  2x2 max, stride 2                         (N, K1, S/2, S/2)
    conv2  F x F, K2 filters, stride 1, P = F // 2   (N, K2, S/2, S/2)
    relu
    pool2  2x2 max, stride 2                         (N, K2, S/4, S/4)
    linear D = K2 * S/4 * S/4 -> num_classes         (N, num_classes) scores

and the loss is softmax + cross-entropy (:func:`cnnlab.nn.softmax_cross_entropy`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from cnnlab import nn as L
from cnnlab.augment import random_shift
from cnnlab.nn import fast
from cnnlab.shapes import whole_number

__all__ = ["NumpyCNN", "SGDMomentum", "random_shift", "train"]


class NumpyCNN:
    """conv-relu-pool, conv-relu-pool, linear, with its forward and backward pass in NumPy.

    Args:
        in_channels (int): ``C``. Default: 1
        num_classes (int): number of scores ``M``. Default: 10
        input_size (int): side ``S`` of the square images, divisible by 4. Default: 8
        k1 (int): filters of conv1. Default: 16
        k2 (int): filters of conv2. Default: 32
        filter_size (int): odd ``F`` of both convolutions (padding ``F // 2`` keeps the size).
            Default: 3
        seed (int): seed of the initial weights (He normal: std ``sqrt(2 / fan_in)``, biases 0).
            Default: 0
        dtype: float type of the parameters. Default: ``np.float32``

    Attributes:
        params (dict): ``w1 (K1, C, F, F)``, ``b1 (K1,)``, ``w2 (K2, K1, F, F)``, ``b2 (K2,)``,
            ``w3 (M, D)``, ``b3 (M,)``.

    Example:
        >>> import numpy as np
        >>> from cnnlab.numpy_net import NumpyCNN
        >>> net = NumpyCNN(input_size=8)
        >>> x, y = np.zeros((5, 1, 8, 8)), np.array([0, 1, 2, 3, 4])
        >>> net.forward(x)[0].shape
        (5, 10)
        >>> loss, grads = net.loss(x, y)
        >>> {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in net.params.items()}
        True
    """

    #: The layers' implementations: the tuned convolution, and the pooling backward pass that
    #: scatters through the indices the forward pass saved. ``benchmarks/bench_training.py`` swaps
    #: in the readable ones (``cnnlab.nn.conv2d``, maxima found again) to time the difference.
    conv2d = staticmethod(fast.conv2d)
    conv2d_backward = staticmethod(fast.conv2d_backward)
    save_pool_indices = True

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int = 8,
        k1: int = 16,
        k2: int = 32,
        filter_size: int = 3,
        seed: int = 0,
        dtype=np.float32,
    ) -> None:
        C = whole_number("in_channels", in_channels)
        M = whole_number("num_classes", num_classes)
        S = whole_number("input_size", input_size)
        K1, K2 = whole_number("k1", k1), whole_number("k2", k2)
        F = whole_number("filter_size", filter_size)
        if S % 4:
            raise ValueError(
                f"input_size must be divisible by 4 (two 2x2 pools halve it twice), got {S}"
            )
        if F % 2 == 0:
            raise ValueError(f"filter_size must be odd so that P = F // 2 keeps the size, got {F}")
        self.in_channels, self.num_classes, self.input_size = C, M, S
        self.filter_size, self.pad = F, F // 2
        D = K2 * (S // 4) * (S // 4)
        rng = np.random.default_rng(seed)

        def he(shape, fan_in):
            return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)

        self.params: dict[str, np.ndarray] = {
            "w1": he((K1, C, F, F), C * F * F),
            "b1": np.zeros(K1, dtype=dtype),
            "w2": he((K2, K1, F, F), K1 * F * F),
            "b2": np.zeros(K2, dtype=dtype),
            "w3": he((M, D), D),
            "b3": np.zeros(M, dtype=dtype),
        }

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        C, S = self.in_channels, self.input_size
        if x.ndim != 4 or x.shape[1] != C or x.shape[2] != S or x.shape[3] != S:
            raise ValueError(
                f"NumpyCNN expects x: (N, {C}, {S}, {S}) (N, C, H, W), got shape {x.shape}"
            )
        return x

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, dict]:
        """Scores ``(N, M)`` for ``x: (N, C, S, S)``, and the cache the backward pass needs."""
        x = self._check(x)
        p, P = self.params, self.pad
        a1 = self.conv2d(x, p["w1"], p["b1"], stride=1, pad=P)  # (N, K1, S, S)
        r1 = L.relu(a1)
        h1, i1 = self._pool(r1)  # (N, K1, S/2, S/2)
        a2 = self.conv2d(h1, p["w2"], p["b2"], stride=1, pad=P)  # (N, K2, S/2, S/2)
        r2 = L.relu(a2)
        h2, i2 = self._pool(r2)  # (N, K2, S/4, S/4)
        scores = L.linear(h2, p["w3"], p["b3"])  # (N, K2*S/4*S/4) @ (D, M) -> (N, M)
        cache = {"x": x, "a1": a1, "r1": r1, "i1": i1, "h1": h1, "a2": a2, "r2": r2, "i2": i2,
                 "h2": h2}
        return scores, cache

    def _pool(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """2x2 max pooling, and the maxima's indices when ``save_pool_indices`` (else None)."""
        if self.save_pool_indices:
            return L.max_pool2d(r, 2, 2, return_indices=True)
        return L.max_pool2d(r, 2, 2), None

    def backward(self, dscores: np.ndarray, cache: dict) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter, from ``dscores = dL/dscores``."""
        p, P, c = self.params, self.pad, cache
        dh2, dw3, db3 = L.linear_backward(dscores, c["h2"], p["w3"])  # dh2: (N, K2, S/4, S/4)
        dr2 = L.max_pool2d_backward(dh2, c["r2"], 2, 2, indices=c["i2"])  # (N, K2, S/2, S/2)
        da2 = L.relu_backward(dr2, c["a2"])
        dh1, dw2, db2 = self.conv2d_backward(da2, c["h1"], p["w2"], stride=1, pad=P)
        dr1 = L.max_pool2d_backward(dh1, c["r1"], 2, 2, indices=c["i1"])  # (N, K1, S, S)
        da1 = L.relu_backward(dr1, c["a1"])
        _, dw1, db1 = self.conv2d_backward(da1, c["x"], p["w1"], stride=1, pad=P)
        return {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2, "w3": dw3, "b3": db3}

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean softmax cross-entropy on ``(x, y)`` and its gradients for every parameter."""
        scores, cache = self.forward(x)
        loss, dscores = L.softmax_cross_entropy(scores, y)
        return loss, self.backward(dscores, cache)

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Predicted classes ``(N,)``."""
        x = self._check(x)
        out = [self.forward(x[i : i + batch_size])[0].argmax(axis=1)
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def to_torch(self):
        """The same network in PyTorch (``nn.Sequential``), with copies of these weights."""
        import torch
        from torch import nn

        p, F, P = self.params, self.filter_size, self.pad
        K1, K2, M = len(p["b1"]), len(p["b2"]), self.num_classes
        model = nn.Sequential(
            nn.Conv2d(self.in_channels, K1, F, padding=P),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(K1, K2, F, padding=P),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),  # (N, K2, S/4, S/4) -> (N, D) in the same C order as NumPy's reshape
            nn.Linear(p["w3"].shape[1], M),
        )
        dtype = torch.float64 if p["w1"].dtype == np.float64 else torch.float32
        model.to(dtype)
        with torch.no_grad():
            for layer, (w, b) in zip([model[0], model[3], model[7]],
                                     [("w1", "b1"), ("w2", "b2"), ("w3", "b3")], strict=True):
                layer.weight.copy_(torch.from_numpy(p[w]))
                layer.bias.copy_(torch.from_numpy(p[b]))
        return model


class SGDMomentum:
    """SGD with (heavy-ball) momentum, as PyTorch's ``torch.optim.SGD`` computes it.

    For each parameter ``w`` with gradient ``g``: ``g = g + weight_decay * w``,
    ``v = momentum * v + g``, ``w = w - lr * v`` (``v`` starts at 0).

    Args:
        params (dict): the arrays to update in place (e.g. ``net.params``).
        lr (float): learning rate. Default: 0.05
        momentum (float): in [0, 1). Default: 0.9
        weight_decay (float): L2 penalty added to the gradients. Default: 0
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.velocity = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        missing = set(self.params) - set(grads)
        if missing:
            raise ValueError(f"grads lacks {sorted(missing)}")
        for k, w in self.params.items():
            g = grads[k] + self.weight_decay * w if self.weight_decay else grads[k]
            v = self.velocity[k]
            v *= self.momentum
            v += g
            w -= (self.lr * v).astype(w.dtype, copy=False)  # in place: net.params sees it


def train(
    net: NumpyCNN,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int = 20,
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 32,
    weight_decay: float = 0.0,
    lr_decay: float = 1.0,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> dict[str, list[float]]:
    """Train ``net`` with mini-batch SGD with momentum; returns the history.

    Args:
        net (NumpyCNN): the network, trained in place.
        x, y: training images ``(N, C, S, S)`` and labels ``(N,)``.
        x_val, y_val: validation images and labels, or None. Default: None
        epochs (int): passes over the training set. Default: 20
        lr (float): learning rate. Default: 0.05
        momentum (float): Default: 0.9
        batch_size (int): Default: 32
        weight_decay (float): L2 penalty. Default: 0
        lr_decay (float): the learning rate is multiplied by this after every epoch. Default: 1
        augment (callable, optional): ``augment(x_batch, rng=rng)`` returns the batch to train on,
            e.g. :func:`random_shift`. Default: None
        seed (int): seed of the batch order. Default: 0
        verbose (bool): print one line per epoch (on stdout). Default: False

    Returns:
        dict: lists ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds`` per
        epoch (the keys of :class:`cnnlab.train.History`: :func:`cnnlab.plot.training_curves`
        draws it).
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must hold as many samples, got {len(x)} and {len(y)}")
    epochs = whole_number("epochs", epochs, 0, allow_float=False)
    batch_size = whole_number("batch_size", batch_size, allow_float=False)
    opt = SGDMomentum(net.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {
        "train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [], "seconds": [],
    }
    for epoch in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        total, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if augment is None else augment(x[idx], rng=rng)
            scores, cache = net.forward(xb)
            loss, dscores = L.softmax_cross_entropy(scores, y[idx])
            opt.step(net.backward(dscores, cache))
            total += loss * len(idx)
            correct += int((scores.argmax(axis=1) == y[idx]).sum())
        opt.lr *= lr_decay
        history["train_loss"].append(total / max(len(x), 1))
        history["train_acc"].append(correct / max(len(x), 1))
        if x_val is not None and y_val is not None:
            scores, _ = net.forward(x_val)
            history["val_loss"].append(L.softmax_cross_entropy(scores, y_val)[0])
            history["val_acc"].append(float((scores.argmax(axis=1) == np.asarray(y_val)).mean()))
        history["seconds"].append(time.perf_counter() - start)
        if verbose:
            line = f"epoch {epoch + 1:3d}  loss {history['train_loss'][-1]:.4f}"
            line += f"  acc {history['train_acc'][-1]:.4f}"
            if history["val_acc"]:
                line += f"  val_acc {history['val_acc'][-1]:.4f}"
            print(line)
    return history
