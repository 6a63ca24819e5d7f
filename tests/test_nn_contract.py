"""What every layer of cnnlab.nn (readable and tuned) promises beyond its numbers: it never writes
into its inputs, its results share no memory with them, and a result stays valid after the next
call (the tuned layer reuses scratch buffers: a result must never be one of them)."""

import numpy as np
import pytest

from cnnlab import nn

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 8, 8))
W = RNG.normal(size=(4, 3, 3, 3))
B = RNG.normal(size=4)
DOUT_CONV = RNG.normal(size=(2, 4, 8, 8))
DOUT_POOL = RNG.normal(size=(2, 3, 4, 4))
_, IDX = nn.max_pool2d(X, 2, 2, return_indices=True)

CALLS = {
    "zero_pad": (nn.zero_pad, (X, 0)),
    "zero_pad P=1": (nn.zero_pad, (X, 1)),
    "conv2d_naive": (nn.conv2d_naive, (X, W, B, 1, 1)),
    "conv2d": (nn.conv2d, (X, W, B, 1, 1)),
    "conv2d_backward": (nn.conv2d_backward, (DOUT_CONV, X, W, 1, 1)),
    "fast.conv2d": (nn.fast.conv2d, (X, W, B, 1, 1)),
    "fast.conv2d no pad": (nn.fast.conv2d, (X, W, None, 1, 0)),
    "fast.conv2d_backward": (nn.fast.conv2d_backward, (DOUT_CONV, X, W, 1, 1)),
    "im2col": (nn.im2col, (X, 3, 1, 1)),
    "max_pool2d": (nn.max_pool2d, (X, 2, 2)),
    "max_pool2d indices": (nn.max_pool2d, (X, 2, 2, True)),
    "max_pool2d_backward": (nn.max_pool2d_backward, (DOUT_POOL, X, 2, 2)),
    "max_pool2d_backward indices": (nn.max_pool2d_backward, (DOUT_POOL, X, 2, 2, IDX)),
    "avg_pool2d": (nn.avg_pool2d, (X, 2, 2)),
    "avg_pool2d_backward": (nn.avg_pool2d_backward, (DOUT_POOL, X, 2, 2)),
    "relu": (nn.relu, (X,)),
    "relu_backward": (nn.relu_backward, (X, X)),
}


def _arrays(result):
    return list(result) if isinstance(result, tuple) else [result]


@pytest.mark.parametrize("name", CALLS)
def test_inputs_untouched_results_fresh_and_lasting(name):
    fn, args = CALLS[name]
    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    results = _arrays(fn(*args))
    kept = [r.copy() for r in results]
    for a, b in zip(args, before, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} wrote into an input")
            for r in results:
                assert not np.shares_memory(r, a), f"{name}'s result shares memory with an input"
    # the same call on other data must not change the first results (no scratch buffer leaks)
    other = [a * 2 + 1 if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args]
    fn(*other)
    for r, k in zip(results, kept, strict=True):
        np.testing.assert_array_equal(r, k, err_msg=f"{name}'s result changed at the next call")
