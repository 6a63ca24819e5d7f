"""Training and evaluating PyTorch models: ``fit``, ``evaluate``, ``accuracy``,
``confusion_matrix``, checkpoints.

Data can be given as a ``DataLoader``, a ``Dataset`` yielding ``(x, y)``, or a tuple of tensors
``(x, y)`` with ``x: (N, C, H, W)`` and ``y: (N,)``. Scores are unnormalised: the softmax lives in
the loss (``nn.CrossEntropyLoss``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cnnlab.shapes import whole_number

__all__ = [
    "Evaluation",
    "History",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "load_checkpoint",
    "pick_device",
    "predict",
    "save_checkpoint",
    "set_seed",
]


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else goes to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from err


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global generator, for code that uses it)
    torch.manual_seed(seed)


@dataclass
class History:
    """Per-epoch loss and accuracy, for the training set (averaged over the epoch's batches while
    training) and the validation set (evaluated after each epoch; empty without one)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> History:
        return cls(**{k: list(v) for k, v in d.items()})


class Evaluation(NamedTuple):
    """Mean loss and accuracy (a fraction in [0, 1]) over a data set."""

    loss: float
    accuracy: float


def _as_loader(data: Any, batch_size: int, shuffle: bool, generator=None) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(a) for a in data)
        if len(x) != len(y):
            raise ValueError(f"x and y must hold as many samples, got {len(x)} and {len(y)}")
        data = TensorDataset(x, y)
    if not isinstance(data, Dataset):
        raise ValueError(
            "data must be a DataLoader, a Dataset of (x, y) or a tuple (x, y) of tensors, got "
            f"{type(data).__name__}"
        )
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {name!r}")


def fit(
    model: nn.Module,
    train: Any,
    val: Any = None,
    epochs: int = 10,
    lr: float = 1e-3,
    *,
    batch_size: int = 64,
    optimizer: str | torch.optim.Optimizer = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    lr_decay: float = 1.0,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: nn.Module | None = None,
    device: str | torch.device = "auto",
    seed: int | None = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train``; evaluate on ``val`` after each.

    Repeatable: with the same ``seed`` and the same initial weights, two runs on the CPU give the
    same history (the seed fixes the batch order and dropout). To also fix the initial weights,
    call ``torch.manual_seed`` (or :func:`set_seed`) before building the model.

    Args:
        model (nn.Module): returns scores ``(N, num_classes)`` for a batch ``(N, C, H, W)``; a
            tuple ``(scores, aux1, ...)`` in training (GoogLeNet's auxiliary heads) is trained
            on ``loss(scores) + 0.3 * sum(loss(aux))``, as in the paper.
        train: the training data (``DataLoader``, ``Dataset`` of ``(x, y)``, or tuple ``(x, y)``);
            a ``DataLoader`` keeps its own batch size and shuffling.
        val: validation data in the same forms, or None. Default: None
        epochs (int): passes over ``train``. Default: 10
        lr (float): learning rate. Default: 1e-3
        batch_size (int): batch size when ``train``/``val`` is not a ``DataLoader``. Default: 64
        optimizer (str or Optimizer): ``"adam"``, ``"adamw"``, ``"sgd"`` (with ``momentum``), or an
            optimizer over ``model``'s parameters. Default: ``"adam"``
        momentum (float): momentum for ``"sgd"``. Default: 0.9
        weight_decay (float): L2 penalty. Default: 0
        lr_decay (float): multiply the learning rate by this after every epoch. Default: 1
        augment (callable, optional): applied to every training batch ``x: (B, C, H, W)``
            before the forward pass, e.g. :func:`cnnlab.data.random_shift`. Default: None
        loss_fn (nn.Module, optional): Default: ``nn.CrossEntropyLoss()`` (softmax + log loss)
        device (str): ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``. Default: ``"auto"``
        seed (int, optional): seeds the batch order and dropout; None leaves the generators alone.
            Default: 0
        progress (bool): show a tqdm bar on stderr. ``False`` prints nothing at all (graded cells
            must stay silent on stderr). Default: True

    Returns:
        History: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` per epoch.

    Example:
        >>> import torch
        >>> from cnnlab.data import load_digits
        >>> from cnnlab.models import convnet
        >>> from cnnlab.train import fit
        >>> digits = load_digits()
        >>> _ = torch.manual_seed(0)
        >>> model = convnet(1, 10, n=1, m=2, k=0, width=8, input_size=8)
        >>> history = fit(model, digits.train, digits.val, epochs=2, progress=False)
        >>> history.epochs, len(history.val_acc)
        (2, 2)
    """
    whole_number("epochs", epochs, 0, allow_float=False)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay!r}")
    whole_number("batch_size", batch_size, allow_float=False)
    dev = pick_device(device)
    generator = None
    if seed is not None:
        set_seed(seed)
        generator = torch.Generator().manual_seed(seed)
    train_loader = _as_loader(train, batch_size, shuffle=True, generator=generator)
    val_loader = None if val is None else _as_loader(val, 256, shuffle=False)
    model.to(dev)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    if isinstance(optimizer, str):
        opt = _make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    else:
        opt = optimizer
    history = History()
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay) if lr_decay < 1 else None

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc="fit", unit="epoch")
    try:
        for _ in range(epochs):
            start = time.perf_counter()
            model.train()
            total_loss, correct, seen = 0.0, 0, 0
            for xb, yb in train_loader:
                xb, yb = xb.to(dev), yb.to(dev)
                if augment is not None:
                    xb = augment(xb)
                out = model(xb)
                if isinstance(out, tuple):
                    # GoogLeNet with auxiliary heads: the paper adds each head's loss times 0.3
                    scores, *aux = out
                    loss = loss_fn(scores, yb) + 0.3 * sum(loss_fn(a, yb) for a in aux)
                else:
                    scores = out  # (B, num_classes)
                    loss = loss_fn(scores, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total_loss += loss.item() * len(yb)
                correct += (scores.argmax(dim=1) == yb).sum().item()
                seen += len(yb)
            if schedule is not None:
                schedule.step()
            history.train_loss.append(total_loss / max(seen, 1))
            history.train_acc.append(correct / max(seen, 1))
            if val_loader is not None:
                ev = evaluate(model, val_loader, loss_fn=loss_fn, device=dev)
                history.val_loss.append(ev.loss)
                history.val_acc.append(ev.accuracy)
            history.seconds.append(time.perf_counter() - start)
            if bar is not None:
                post = {"loss": f"{history.train_loss[-1]:.3f}"}
                if history.val_acc:
                    post["val_acc"] = f"{history.val_acc[-1]:.3f}"
                bar.set_postfix(post)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Any,
    loss_fn: nn.Module | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
) -> Evaluation:
    """Mean loss and accuracy of ``model`` on ``data``, in eval mode (restored afterwards).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from cnnlab.train import evaluate
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> ev = evaluate(model, (torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 1])))
        >>> 0 <= ev.accuracy <= 1
        True
    """
    dev = pick_device(device)
    loader = _as_loader(data, batch_size, shuffle=False)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    was_training = model.training
    model.to(dev).eval()
    total_loss, correct, seen = 0.0, 0, 0
    try:
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            scores = model(xb)
            total_loss += loss_fn(scores, yb).item() * len(yb)
            correct += (scores.argmax(dim=1) == yb).sum().item()
            seen += len(yb)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("cannot evaluate on an empty data set")
    return Evaluation(total_loss / seen, correct / seen)


@torch.no_grad()
def predict(
    model: nn.Module, data: Any, batch_size: int = 256, device: str | torch.device = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true labels, ``(y_pred, y_true)``, each ``(N,)`` on the CPU."""
    dev = pick_device(device)
    loader = _as_loader(data, batch_size, shuffle=False)
    was_training = model.training
    model.to(dev).eval()
    preds, labels = [], []
    try:
        for xb, yb in loader:
            preds.append(model(xb.to(dev)).argmax(dim=1).cpu())
            labels.append(yb.cpu())
    finally:
        model.train(was_training)
    return torch.cat(preds), torch.cat(labels)


def accuracy(scores: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Fraction of correct predictions; ``scores`` are ``(N, K)`` scores or ``(N,)`` classes.

    Example:
        >>> import torch
        >>> from cnnlab.train import accuracy
        >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    scores, y = torch.as_tensor(scores), torch.as_tensor(y)
    pred = scores.argmax(dim=1) if scores.dim() == 2 else scores
    if pred.dim() != 1 or y.dim() != 1 or len(pred) != len(y):
        raise ValueError(
            f"accuracy expects scores (N, K) or predictions (N,) and labels (N,), got "
            f"{tuple(scores.shape)} and {tuple(y.shape)}"
        )
    if len(y) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return (pred == y).double().mean().item()


def confusion_matrix(
    y_true: torch.Tensor | np.ndarray,
    y_pred: torch.Tensor | np.ndarray,
    num_classes: int | None = None,
) -> np.ndarray:
    """``(K, K)`` counts: row ``i``, column ``j`` counts images of class ``i`` predicted as ``j``.

    Example:
        >>> from cnnlab.train import confusion_matrix
        >>> confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2])
        array([[1, 0, 0],
               [0, 1, 1],
               [0, 0, 1]])
    """
    t = np.asarray(torch.as_tensor(y_true).cpu(), dtype=np.int64).ravel()
    p = np.asarray(torch.as_tensor(y_pred).cpu(), dtype=np.int64).ravel()
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}")
    if len(t) and (t.min() < 0 or p.min() < 0):
        raise ValueError("class labels must be >= 0")
    K = int(max(t.max(initial=-1), p.max(initial=-1)) + 1) if num_classes is None else num_classes
    if len(t) and max(t.max(), p.max()) >= K:
        raise ValueError(f"labels go up to {max(t.max(), p.max())}, beyond num_classes={K}")
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    history: History | None = None,
    **extra: Any,
) -> Path:
    """Save the model's (and optimizer's) state, the history and ``extra`` values to ``path``.

    ``extra`` holds plain Python values (numbers, strings, lists, dicts, tensors): the checkpoint
    is read back with ``torch.load(..., weights_only=True)``, which unpickles nothing else.

    Example:
        >>> import tempfile, torch
        >>> from torch import nn
        >>> from cnnlab.train import save_checkpoint, load_checkpoint
        >>> model = nn.Linear(3, 2)
        >>> path = save_checkpoint(tempfile.mkdtemp() + "/model.pt", model, epoch=5)
        >>> load_checkpoint(path, nn.Linear(3, 2))
        {'history': None, 'epoch': 5}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "history": None if history is None else history.to_dict(),
        "extra": extra,
    }
    torch.save(state, path)
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``).

    Returns:
        dict: ``{"history": History or None, **extra}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path.resolve()}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        if state["optimizer"] is None:
            raise ValueError(f"{path} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    history = None if state["history"] is None else History.from_dict(state["history"])
    return {"history": history, **state["extra"]}
