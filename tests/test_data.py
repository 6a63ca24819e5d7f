"""cnnlab.data: the digits split, Fashion-MNIST IDX files (written here, tiny), the sample image."""

import gzip
import struct

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from cnnlab.data import (
    FASHION_MNIST_FILES,
    load_digits,
    load_fashion_mnist,
    read_idx,
    sample_image,
)


def test_digits_shapes_types_and_range(digits):
    for part in (digits.train, digits.val, digits.test):
        x, y = part.tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and y.shape == (len(x),)
        assert 0.0 <= x.min() and x.max() <= 1.0
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1258, 180, 359)
    assert digits.classes == [str(i) for i in range(10)] and digits.num_classes == 10


def test_digits_split_is_a_partition_of_sklearns_images(digits):
    """Every image lands in exactly one part: the union is sklearn's set, as a multiset."""
    bunch = sk_load_digits()
    original = np.concatenate(
        [bunch.images.reshape(-1, 64) / 16.0, bunch.target[:, None]], axis=1
    )
    ours = np.concatenate(
        [
            np.concatenate([p.tensors[0].reshape(-1, 64).numpy(), p.tensors[1][:, None].numpy()], 1)
            for p in (digits.train, digits.val, digits.test)
        ]
    )
    assert ours.shape == original.shape

    def sort_rows(a):
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_allclose(sort_rows(ours), sort_rows(original), rtol=0, atol=1e-7)


def test_digits_split_is_stratified_and_fixed(digits):
    counts = np.bincount(sk_load_digits().target)
    test_counts = np.bincount(digits.test.tensors[1].numpy(), minlength=10)
    # each class keeps its share (20%) of the test set, to within one image
    assert np.all(np.abs(test_counts - counts * 359 / 1797) <= 1)
    again = load_digits()
    for a, b in zip((digits.train, digits.val, digits.test), (again.train, again.val, again.test),
                    strict=True):
        assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    other = load_digits(seed=1)
    assert not torch.equal(other.test.tensors[1], digits.test.tensors[1])


def test_digits_resize_and_options():
    big = load_digits(resize=32)
    assert big.image_shape == (1, 32, 32)
    assert 0.0 <= big.train.tensors[0].min() and big.train.tensors[0].max() <= 1.0
    no_val = load_digits(val_fraction=0)
    assert no_val.val is None and len(no_val.train) + len(no_val.test) == 1797


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resize": 0}, "resize"),
        ({"resize": 2.5}, "resize"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"0\.5 \+ 0\.5"),
    ],
)
def test_digits_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)


# --- IDX / Fashion-MNIST ----------------------------------------------------------------------

def write_idx(path, array: np.ndarray, code: int = 0x08, compress: bool = False) -> None:
    """The IDX format: 0, 0, type code, ndim, big-endian int32 sizes, then the data."""
    dtype = {0x08: ">u1", 0x0C: ">i4"}[code]
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(dtype).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_fashion(root, n_train=24, n_test=10, size=6, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, arr in arrays.items():
        write_idx(root / FASHION_MNIST_FILES[key], arr, compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_reads_idx_files(tmp_path, compress):
    arrays = make_fashion(tmp_path, compress=compress)
    data = load_fashion_mnist(tmp_path, val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 10)
    x_test, y_test = data.test.tensors
    assert x_test.shape == (10, 1, 6, 6) and x_test.dtype == torch.float32
    np.testing.assert_allclose(x_test[:, 0].numpy() * 255, arrays["test_images"], atol=1e-4)
    np.testing.assert_array_equal(y_test.numpy(), arrays["test_labels"])
    # train + val is the training file, reordered
    x_all = torch.cat([data.train.tensors[0], data.val.tensors[0]])[:, 0].numpy() * 255
    key = np.argsort(x_all.reshape(len(x_all), -1).sum(1))
    ref = arrays["train_images"].astype(np.float32)
    ref_key = np.argsort(ref.reshape(len(ref), -1).sum(1))
    np.testing.assert_allclose(x_all[key], ref[ref_key], atol=1e-3)
    assert data.classes[0] == "T-shirt/top" and len(data.classes) == 10


def test_fashion_mnist_resize(tmp_path):
    make_fashion(tmp_path)
    assert load_fashion_mnist(tmp_path, resize=12).image_shape == (1, 12, 12)


def test_fashion_mnist_missing_files_say_where_and_from_where(tmp_path):
    make_fashion(tmp_path)
    (tmp_path / FASHION_MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_fashion_mnist(tmp_path)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path.resolve()) in message
    assert "zalandoresearch/fashion-mnist" in message
    assert "train-images-idx3-ubyte" not in message.split("Put")[0]  # only the missing one first


def test_fashion_mnist_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_fashion_mnist_inconsistent_files(tmp_path):
    make_fashion(tmp_path)
    write_idx(tmp_path / FASHION_MNIST_FILES["train_labels"], np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(24, 6, 6\) and \(5,\)"):
        load_fashion_mnist(tmp_path)


def test_read_idx_other_types_and_bad_files(tmp_path):
    a = np.arange(-3, 9, dtype=np.int32).reshape(3, 4)
    write_idx(tmp_path / "ints", a, code=0x0C)
    out = read_idx(tmp_path / "ints")
    np.testing.assert_array_equal(out, a)
    assert out.dtype.isnative
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    good = bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + bytes(7)  # announces 10, holds 7
    (tmp_path / "short").write_bytes(good)
    with pytest.raises(ValueError, match="10 bytes of data.*holds 7"):
        read_idx(tmp_path / "short")


# --- the sample image -------------------------------------------------------------------------

def test_sample_image_full_and_small():
    from matplotlib import cbook
    from PIL import Image

    img = sample_image()
    assert img.shape == (600, 512, 3) and img.dtype == np.uint8
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as ref:
        np.testing.assert_array_equal(img, np.asarray(ref.convert("RGB")))
    small = sample_image(32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8
    # the 32x32 image is the centre square scaled down: the mean colour barely changes
    crop = img[44:556].astype(float)
    assert np.abs(small.reshape(-1, 3).mean(0) - crop.reshape(-1, 3).mean(0)).max() < 3.0


@pytest.mark.parametrize("size", [0, -4, 3.0, True])
def test_sample_image_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        sample_image(size)


# --- augmentation -----------------------------------------------------------------------------

def all_shifts(img: torch.Tensor, s: int) -> list[torch.Tensor]:
    """Every shift of img (C, H, W) by -s..s rows and columns, zero-filled, the slow way."""
    C, H, W = img.shape
    out = []
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            shifted = torch.zeros_like(img)
            for i in range(H):
                for j in range(W):
                    if 0 <= i - dy < H and 0 <= j - dx < W:
                        shifted[:, i, j] = img[:, i - dy, j - dx]
            out.append(shifted)
    return out


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shift_moves_each_image_by_at_most_max_shift(max_shift):
    from cnnlab.data import random_shift

    torch.manual_seed(0)
    x = torch.rand(12, 2, 6, 6)
    out = random_shift(x, max_shift)
    assert out.shape == x.shape
    seen = set()
    for n in range(len(x)):
        matches = [k for k, s in enumerate(all_shifts(x[n], max_shift)) if torch.equal(s, out[n])]
        assert matches, f"image {n} is not a shift of the input by at most {max_shift}"
        seen.add(matches[0])
    assert len(seen) > 1  # random: not all images got the same shift
    assert torch.equal(random_shift(x, 0), x)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(x, -1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_shift(x[0])
