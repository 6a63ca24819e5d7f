"""Real data with no download: the digits bundled with scikit-learn, Fashion-MNIST from local
IDX files, and the photo that matplotlib ships.

Images come as float32 tensors ``x: (N, C, H, W)`` with values in ``[0, 1]`` and labels as int64
``y: (N,)``, wrapped in ``torch.utils.data.TensorDataset`` (``x, y = splits.train.tensors``).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from cnnlab.augment import random_shift

__all__ = [
    "DataSplits",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "load_digits",
    "load_fashion_mnist",
    "random_shift",
    "read_idx",
    "sample_image",
]


@dataclass
class DataSplits:
    """A fixed train / validation / test split; each part is a ``TensorDataset(x, y)``."""

    train: TensorDataset
    val: TensorDataset | None
    test: TensorDataset
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train.tensors[0].shape[1:])

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{name}={len(part) if part is not None else 0}"
            for name, part in [("train", self.train), ("val", self.val), ("test", self.test)]
        )
        return f"DataSplits({sizes}, image_shape={self.image_shape}, classes={self.num_classes})"


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Bilinear resize of ``x: (N, C, H, W)`` to ``(N, C, size, size)``."""
    if size is None:
        return x
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"resize must be a positive int (the new H = W) or None, got {size!r}")
    return torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False
    ).clamp_(0.0, 1.0)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def load_digits(
    resize: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DataSplits:
    """scikit-learn's 1,797 handwritten digits (8x8, 10 classes) as tensors, with a fixed split.

    The split is stratified (every class keeps its share in each part) and fixed by ``seed``, so the
    book, the exercises and the benchmarks see the same test images. Pixels (0..16 in the original)
    are scaled to ``[0, 1]``.

    Args:
        resize (int, optional): resize to ``resize x resize`` (bilinear), e.g. 32 for
            :class:`~cnnlab.models.LeNet5`. Default: None (keep 8x8)
        val_fraction (float): share of all images for validation. Default: 0.1
        test_fraction (float): share of all images for the test set. Default: 0.2
        seed (int): seed of the split. Default: 0

    Returns:
        DataSplits: ``train`` (1,258 images with the defaults), ``val`` (180), ``test`` (359),
        each a ``TensorDataset`` of ``x: (N, 1, H, W)`` float32 and ``y: (N,)`` int64; ``classes``
        ``["0", ..., "9"]``.

    Example:
        >>> from cnnlab.data import load_digits
        >>> digits = load_digits()
        >>> x, y = digits.train.tensors
        >>> x.shape, y.shape, len(digits.val), len(digits.test)
        (torch.Size([1258, 1, 8, 8]), torch.Size([1258]), 180, 359)
        >>> load_digits(resize=32).image_shape
        (1, 32, 32)
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave training images, got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}"
        )
    bunch = sk_load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8), 0..16 -> [0, 1]
    labels = bunch.target.astype(np.int64)
    idx = np.arange(len(labels))
    rest, test = train_test_split(
        idx, test_size=round(test_fraction * len(idx)), stratify=labels, random_state=seed
    )
    if val_fraction > 0:
        train, val = train_test_split(
            rest, test_size=round(val_fraction * len(idx)), stratify=labels[rest],
            random_state=seed,
        )
    else:
        train, val = rest, None

    def part(i: np.ndarray | None) -> TensorDataset | None:
        if i is None:
            return None
        i = np.sort(i)
        x = torch.from_numpy(images[i]).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
        return TensorDataset(_resize(x, resize), torch.from_numpy(labels[i]))

    return DataSplits(part(train), part(val), part(test), classes=[str(d) for d in range(10)])


# --- Fashion-MNIST ----------------------------------------------------------------------------

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

#: The four standard files; each may also be gzipped (``.gz``).
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_FASHION_MNIST_SOURCE = (
    "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion), or "
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
)

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a NumPy array.

    The format: two zero bytes, a type code (``0x08`` = uint8), the number of dimensions ``d``, then
    ``d`` big-endian int32 sizes, then the values in C order.

    Args:
        path (str or Path): the file; a name ending in ``.gz`` is decompressed.

    Returns:
        np.ndarray: shape ``(n_1, ..., n_d)``, e.g. ``(60000, 28, 28)`` uint8 for images and
        ``(60000,)`` for labels.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: it must start with bytes 0, 0, a type code in "
            f"{sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions; "
            f"got {list(data[:4])}"
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, expected {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: the header announces shape {shape} ({expected} bytes of data), but the file "
            f"holds {len(data) - header} bytes after the header"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # big-endian on disk -> native order


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_fashion_mnist(
    root: str | Path,
    resize: int | None = None,
    val_fraction: float = 1 / 12,
    seed: int = 0,
) -> DataSplits:
    """Fashion-MNIST (28x28 grey images of clothes, 10 classes) from the four IDX files in ``root``.

    Nothing is downloaded. Put ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each possibly ending in ``.gz``) in
    ``root``; they come from https://github.com/zalandoresearch/fashion-mnist. The validation set
    is a fixed, seeded random share of the training files; the test set is the ``t10k`` files.

    Args:
        root (str or Path): the folder holding the files.
        resize (int, optional): resize to ``resize x resize`` (bilinear). Default: None (28x28)
        val_fraction (float): share of the training images held out for validation (1/12: 5,000 of
            60,000). Default: 1/12
        seed (int): seed of the validation split. Default: 0

    Returns:
        DataSplits: ``x: (N, 1, 28, 28)`` float32 in ``[0, 1]`` and ``y: (N,)`` int64 per part.

    Raises:
        FileNotFoundError: a file is missing; the message lists what to put where.
        ValueError: a file is not a valid IDX file, or images and labels disagree.
    """
    _check_fraction("val_fraction", val_fraction)
    root = Path(root)
    paths = {key: _find(root, name) for key, name in FASHION_MNIST_FILES.items()}
    missing = [FASHION_MNIST_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST: missing {', '.join(missing)} (or the same with .gz) in "
            f"{root.resolve()}. Put the four files {', '.join(FASHION_MNIST_FILES.values())} "
            f"(gzipped or not) in that folder; they come from {_FASHION_MNIST_SOURCE}. "
            "Nothing is downloaded at run time."
        )
    arrays = {key: read_idx(p) for key, p in paths.items()}

    def tensors(images: np.ndarray, labels: np.ndarray, which: str):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"Fashion-MNIST {which}: expected images (N, H, W) and labels (N,), got "
                f"{images.shape} and {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"Fashion-MNIST {which}: labels must be 0..9, got {np.unique(labels)}")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, H, W)
        return _resize(x, resize), torch.from_numpy(labels.astype(np.int64))

    x, y = tensors(arrays["train_images"], arrays["train_labels"], "train")
    x_test, y_test = tensors(arrays["test_images"], arrays["test_labels"], "test")
    n_val = round(val_fraction * len(y))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    val = TensorDataset(x[val_idx], y[val_idx]) if n_val > 0 else None
    return DataSplits(
        TensorDataset(x[train_idx], y[train_idx]), val, TensorDataset(x_test, y_test),
        classes=list(FASHION_MNIST_CLASSES),
    )


# --- the running example ----------------------------------------------------------------------

def sample_image(size: int | None = None) -> np.ndarray:
    """The RGB photo of Grace Hopper that matplotlib ships, as an ``(H, W, 3)`` uint8 array.

    Args:
        size (int, optional): if given, centre-crop the photo to a square and resize it to
            ``size x size`` (Lanczos), e.g. ``sample_image(32)`` for the slides' 32x32x3 image.
            Default: None (the full 600x512 photo)

    Returns:
        np.ndarray: ``(600, 512, 3)`` uint8, or ``(size, size, 3)``. For PyTorch,
        ``torch.from_numpy(img).permute(2, 0, 1).float() / 255`` gives ``(3, H, W)`` in ``[0, 1]``.

    Example:
        >>> from cnnlab.data import sample_image
        >>> sample_image().shape, sample_image(32).shape
        ((600, 512, 3), (32, 32, 3))
    """
    from matplotlib import cbook
    from PIL import Image

    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive int (the square's side) or None, got {size!r}")
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as img:
        img = img.convert("RGB")
        if size is not None:
            w, h = img.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            img = img.crop((left, top, left + s, top + s)).resize((size, size), Image.LANCZOS)
        return np.asarray(img, dtype=np.uint8).copy()
