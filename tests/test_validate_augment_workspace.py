"""Unit tests for the small shared pieces the layers and trainers stand on, until now only reached
through them: the whole-number check, random_shift on arrays and tensors, the scratch buffers."""

import threading

import numpy as np
import pytest
import torch

from cnnlab.augment import random_shift
from cnnlab.nn._workspace import ALIGN, MAX_BYTES, scratch
from cnnlab.shapes import whole_number

# -- whole_number -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 7, np.int64(7), np.uint8(3), 7.0, np.float32(2.0)])
def test_whole_numbers_pass_as_python_ints(value):
    out = whole_number("n", value)
    assert out == value and type(out) is int


@pytest.mark.parametrize(
    "value, minimum, match",
    [
        (0, 1, "n must be a whole number >= 1, got 0"),
        (-1, 0, "n must be a whole number >= 0, got -1"),
        (2.5, 1, "n must be a whole number >= 1, got 2.5"),
        (True, 0, "got the bool True"),
        (np.bool_(False), 0, "got the bool False"),
        ("3", 1, "got '3'"),
        (None, 1, "got None"),
        (float("nan"), 1, "got nan"),
        (float("inf"), 1, "got inf"),
    ],
)
def test_anything_else_is_a_value_error_naming_it(value, minimum, match):
    with pytest.raises(ValueError, match=match):
        whole_number("n", value, minimum)


def test_allow_float_false_wants_an_int():
    assert whole_number("width", 0, 0, allow_float=False) == 0
    with pytest.raises(ValueError, match="width must be an int >= 1, got 2.0"):
        whole_number("width", 2.0, allow_float=False)


def test_the_minimum_is_inclusive():
    assert whole_number("pad P", 0, 0) == 0
    assert whole_number("stride S", 1, 1) == 1


# -- random_shift -------------------------------------------------------------------------------


def shifted_by(x, dy, dx):
    """x moved down by dy and right by dx (negative: up/left), zeros filling in."""
    out = np.zeros_like(x)
    H, W = x.shape[-2:]
    out[..., max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = \
        x[..., max(-dy, 0) : H - max(dy, 0), max(-dx, 0) : W - max(dx, 0)]
    return out


@pytest.mark.parametrize("s", [1, 2])
def test_each_array_image_is_its_own_shift_drawn_from_rng(s):
    x = np.random.default_rng(0).random((16, 2, 5, 7))
    out = random_shift(x, s, np.random.default_rng(3))
    dy, dx = np.random.default_rng(3).integers(0, 2 * s + 1, size=(2, 16))
    for n in range(16):   # offset d crops at d: a shift by s - d
        np.testing.assert_array_equal(out[n], shifted_by(x[n], s - dy[n], s - dx[n]))
    assert out.dtype == x.dtype and out.shape == x.shape


def test_tensors_come_back_as_tensors_with_offsets_from_torchs_generator():
    x = torch.rand(16, 1, 6, 6)
    torch.manual_seed(4)
    out = random_shift(x)
    torch.manual_seed(4)
    dy, dx = torch.randint(0, 3, (2, 16)).numpy()
    assert isinstance(out, torch.Tensor) and out.dtype == x.dtype
    for n in range(16):
        expected = shifted_by(x[n].numpy(), 1 - dy[n], 1 - dx[n])
        np.testing.assert_array_equal(out[n].numpy(), expected)
    torch.manual_seed(4)
    assert torch.equal(random_shift(x), out)   # fit's seed repeats it


def test_max_shift_zero_and_bad_arguments():
    x = np.ones((2, 1, 3, 3))
    assert random_shift(x, 0) is x
    with pytest.raises(ValueError, match="max_shift must be an int >= 0, got -1"):
        random_shift(x, -1)
    with pytest.raises(ValueError, match="max_shift must be an int >= 0"):
        random_shift(x, np.random.default_rng())   # the rng passed where max_shift goes
    with pytest.raises(ValueError, match=r"x: \(N, C, H, W\), got shape \(3, 3\)"):
        random_shift(x[0, 0])


# -- scratch buffers ----------------------------------------------------------------------------


def test_scratch_is_aligned_shaped_and_reused_per_role():
    a = scratch("test-a", (3, 5), np.float32)
    assert a.shape == (3, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.ctypes.data % ALIGN == 0
    a[...] = 1
    b = scratch("test-a", (2, 2), np.float64)        # same role: the same memory, overwritten
    assert np.shares_memory(a, b) and b.ctypes.data % ALIGN == 0
    c = scratch("test-c", (3, 5), np.float32)        # another role: its own memory
    assert not np.shares_memory(a, c)


def test_scratch_grows_and_leaves_huge_requests_alone():
    scratch("test-grow", (4,), np.float64)
    big = scratch("test-grow", (1000,), np.float64)
    assert big.size == 1000 and big.ctypes.data % ALIGN == 0
    big[...] = 2.0                                    # the whole grown buffer is writable
    assert scratch("test-grow", (1000,), np.float64).sum() == 2000.0   # and handed out again
    n = MAX_BYTES // 4 + 1                            # over the limit: a plain, unshared array
    huge1, huge2 = scratch("test-huge", (n,), np.float32), scratch("test-huge", (n,), np.float32)
    assert not np.shares_memory(huge1, huge2)
    assert huge1.dtype == np.float32 and huge1.shape == (n,)


@pytest.mark.parametrize("offset", [8, 16, 32, 48])
def test_scratch_aligns_a_buffer_that_starts_off_the_64_byte_grid(offset):
    """Where the buffer the role holds starts ``offset`` bytes past a 64-byte boundary, the
    array handed out still starts on one (malloc's usual 16-byte alignment is not enough)."""
    from cnnlab.nn import _workspace
    raw = np.empty(4096 + 2 * ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN + offset
    _workspace._local.__dict__.setdefault("buffers", {})["test-off"] = raw[start:start + 4096]
    a = scratch("test-off", (100,), np.float64)
    assert a.ctypes.data % ALIGN == 0
    assert np.shares_memory(a, raw)                   # the role's buffer, not a new one


def test_scratch_buffers_are_per_thread():
    mine = scratch("test-thread", (8,), np.float64)
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(scratch("test-thread", (8,), np.float64)))
    t.start()
    t.join()
    assert not np.shares_memory(mine, theirs[0])
