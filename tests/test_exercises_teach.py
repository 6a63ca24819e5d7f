"""The visible tests teach: each usual wrong answer fails a visible test cell with its own hint.

Every entry of ``WRONG`` below is a mistake students make, written as the solution cell a student
would hand in. The test puts it into the STUDENT notebook (exercises/, hidden tests stripped), with
every other solution cell filled in correctly, runs the notebook with nbgrader's Validator (what
the Validate button runs) and asserts that the named visible test cell fails with a message that
contains the intended hint, shown as one short `error` output (no traceback through checks.py).
Wrong answers for different cells share one Validator run where they cannot interfere.

The correct answers (the solution cells) pass every visible test cell, and each prints exactly one
line, ``✓ <what it checked> (<points> points)``, to stdout, with the cell's points.

docs/exercises.md lists the same table for readers: keep the two in step (a test checks that every
wrong answer here is named there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(
    p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
)


@dataclass(frozen=True)
class Wrong:
    """A wrong answer: ``source`` in solution cell ``cell`` must fail visible test ``test``."""

    assignment: str
    cell: str
    name: str  # what the student got wrong, as docs/exercises.md names it
    source: str
    test: str
    hint: str  # a piece of the failure message (case-insensitive)


CONV2D_NAIVE = """def conv2d_naive(x, w, b):
    x, w, b = np.asarray(x, dtype=float), np.asarray(w, dtype=float), np.asarray(b, dtype=float)
    N, C, H, W = x.shape
    K, Cw, F, _ = w.shape
    if Cw != C or b.shape != (K,) or F > H or F > W:
        raise ValueError(f"bad shapes x {x.shape}, w {w.shape}, b {b.shape}")
    out = np.zeros((N, K, H - F + 1, W - F + 1))
    for n in range(N):
        for k in range(K):
            for i in range(H - F + 1):
                for j in range(W - F + 1):
                    out[n, k, i, j] = np.sum(x[n, :, i:i + F, j:j + F] * w[k]) + b[k]
    return out
"""

CONV_OUTPUT_SIZE = """def conv_output_size(n, f, stride=1, pad=0):
    if f > n + 2 * pad or (n + 2 * pad - f) % stride:
        raise ValueError(f"a {f}x{f} filter does not fit {n}x{n}, stride {stride}, pad {pad}")
    return (n + 2 * pad - f) // stride + 1
"""

ZERO_PAD = """def zero_pad(x, pad):
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    out[:, :, pad:pad + H, pad:pad + W] = x
    return out
"""

CONV2D = """def conv2d(x, w, b, stride=1, pad=0):
    N, C, H, W = x.shape
    K, Cw, F, _ = w.shape
    if Cw != C:
        raise ValueError(f"x has {C} channels, w has {Cw}")
    Ho, Wo = conv_output_size(H, F, stride, pad), conv_output_size(W, F, stride, pad)
    xp = zero_pad(x, pad)
    out = np.zeros((N, K, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            block = xp[:, :, i * stride:i * stride + F, j * stride:j * stride + F]
            out[:, :, i, j] = block.reshape(N, -1) @ w.reshape(K, -1).T + b
    return out
"""

CONV1X1 = """def conv1x1(x, w, b):
    N, C, H, W = x.shape
    K = w.shape[0]
    if w.shape[2:] != (1, 1) or w.shape[1] != C:
        raise ValueError(f"x {x.shape} and w {w.shape} do not go together")
    out = w.reshape(K, C) @ x.reshape(N, C, H * W) + b[:, None]
    return out.reshape(N, K, H, W)
"""

LAYER_SUMMARY = """def conv_layer_summary(n, c, k, f, stride, pad):
    if f > n + 2 * pad or (n + 2 * pad - f) % stride:
        raise ValueError(f"a {f}x{f} filter, stride {stride}, pad {pad} does not fit {n}x{n}")
    n_out = (n - f + 2 * pad) // stride + 1
    return (k, n_out, n_out), f * f * c * k + k
"""

FITTING_PAD = """def fitting_pad(n, f, stride):
    for pad in range(f):
        if f <= n + 2 * pad and (n + 2 * pad - f) % stride == 0:
            return pad
    raise ValueError(f"no P in 0..{f - 1} fits a {f}x{f} filter, stride {stride}, on {n}x{n}")
"""

POOL_CHECKS = """    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {x.shape}")
    N, C, H, W = x.shape
    if size < 1 or stride < 1 or size > min(H, W) or (H - size) % stride or (W - size) % stride:
        raise ValueError(f"a {size}x{size} window, stride {stride}, does not fit {H}x{W}")
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
"""

MAX_FORWARD = (
    """def max_pool_forward(x, size=2, stride=2):
"""
    + POOL_CHECKS
    + """    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out
"""
)

MAX_BACKWARD = """def max_pool_backward(dout, x, size=2, stride=2):
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(x.shape)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size]
                    a, d = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + a, j * stride + d] += dout[n, c, i, j]
    return dx
"""

AVG_POOL = (
    """def avg_pool_forward(x, size=2, stride=2):
"""
    + POOL_CHECKS
    + """    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            out[:, :, i, j] = window.mean(axis=(2, 3))
    return out


def avg_pool_backward(dout, x, size=2, stride=2):
    dx = np.zeros(np.shape(x))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            share = dout[:, :, i, j][:, :, None, None] / (size * size)
            dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += share
    return dx
"""
)

NUMERICAL_GRADIENT = """def numerical_gradient(f, x, dout, h=1e-5):
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad
"""

CONV_BACKWARD = """def conv_backward(dout, x, w, stride=1, pad=0):
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    S, P = stride, pad
    Ho, Wo = (H + 2 * P - F) // S + 1, (W + 2 * P - F) // S + 1
    if dout.shape != (N, K, Ho, Wo):
        raise ValueError(f"dout {dout.shape}, expected {(N, K, Ho, Wo)}")
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    rows, cols = slice(i * S, i * S + F), slice(j * S, j * S + F)
                    dw[k] += dout[n, k, i, j] * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += dout[n, k, i, j] * w[k]
    dx = dxp[:, :, P:P + H, P:P + W]
    return dx, dw, db
"""

FLATTEN = """def flatten(x):
    if np.ndim(x) != 4:
        raise ValueError(f"expected (N, C, H, W), got shape {np.shape(x)}")
    return np.reshape(x, (np.shape(x)[0], -1))
"""

IM2COL = """def im2col(x, F, stride=1, pad=0):
    if np.ndim(x) != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {np.shape(x)}")
    N, C, H, W = x.shape
    S, P = stride, pad
    for n in (H, W):
        if S < 1 or P < 0 or F > n + 2 * P or (n + 2 * P - F) % S:
            raise ValueError(f"a {F}x{F} filter, stride {S}, pad {P} does not fit {n}")
    Ho, Wo = (H + 2 * P - F) // S + 1, (W + 2 * P - F) // S + 1
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    cols = np.empty((N, C, F, F, Ho, Wo))
    for a in range(F):
        for d in range(F):
            cols[:, :, a, d] = xp[:, :, a:a + S * Ho:S, d:d + S * Wo:S]
    return cols.reshape(N, C * F * F, Ho * Wo)
"""

CONV_IM2COL = """def conv_im2col(x, w, b, stride=1, pad=0):
    N, C, H, W = x.shape
    K, Cw, F, _ = w.shape
    if Cw != C:
        raise ValueError(f"x has {C} channels, w has {Cw}")
    Ho, Wo = (H + 2 * pad - F) // stride + 1, (W + 2 * pad - F) // stride + 1
    out = w.reshape(K, -1) @ im2col(x, F, stride, pad) + b.reshape(K, 1)
    return out.reshape(N, K, Ho, Wo)
"""

SPEEDUP = """def best_time(fn, *args, repeat=3, **kwargs):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def speedup(x, w, b, stride=1, pad=0, repeat=3):
    naive = best_time(cnnlab.nn.conv2d_naive, x, w, b, stride=stride, pad=pad, repeat=repeat)
    fast = best_time(conv_im2col, x, w, b, stride=stride, pad=pad, repeat=repeat)
    return naive / fast
"""

TRAIN_MODEL = """def train_model(model, train_data, val_data):
    fit(model, train_data, val_data, epochs=30, lr=5e-3, batch_size=32, seed=0, device="cpu",
        progress=False)
    return model
"""

BASIC_BLOCK = """class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))
"""


def variant(source: str, *replacements: tuple[str, str]) -> str:
    """``source`` with each (old, new) replaced once; fails if an ``old`` is not there."""
    for old, new in replacements:
        assert old in source, f"{old!r} not in the source"
        source = source.replace(old, new, 1)
    return source


WRONG = [
    # -- 02_convolution ----------------------------------------------------------------------
    Wrong(
        "02_convolution",
        "conv_single_step",
        "returns int(...)",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return int(np.sum(x_slice * w) + b)\n",
        "test_conv_single_step",
        "integer dtype",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "forgets the bias",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return float(np.sum(x_slice * w))\n",
        "test_conv_single_step",
        "bias is missing",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "uses np.convolve",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return float(np.convolve(np.ravel(x_slice), np.ravel(w)[::-1], 'valid')[0] + b)\n",
        "test_conv_single_step",
        "from scratch",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "flips the filter",
        "def conv_single_step(x_slice, w, b):\n"
        "    if np.shape(x_slice) != np.shape(w):\n"
        "        raise ValueError(f'{np.shape(x_slice)} vs {np.shape(w)}')\n"
        "    return float(np.sum(x_slice * w[:, ::-1, ::-1]) + b)\n",
        "test_conv_single_step",
        "flipped",
    ),
    Wrong(
        "02_convolution",
        "conv_single_step",
        "no ValueError for mismatched shapes (broadcasts)",
        "def conv_single_step(x_slice, w, b):\n    return float(np.sum(x_slice * w) + b)\n",
        "test_conv_single_step",
        "broadcasts silently",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "forgets the biases",
        variant(CONV2D_NAIVE, (" * w[k]) + b[k]", " * w[k])")),
        "test_conv2d_naive",
        "biases are missing",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "integer output array",
        variant(CONV2D_NAIVE, ("W - F + 1))\n", "W - F + 1), dtype=int)\n")),
        "test_conv2d_naive",
        "integer dtype",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "flips the filters",
        variant(CONV2D_NAIVE, (" * w[k])", " * w[k, :, ::-1, ::-1])")),
        "test_conv2d_naive",
        "flipped",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "mixes up H and W (non-square input)",
        variant(
            CONV2D_NAIVE,
            ("(N, K, H - F + 1, W - F + 1)", "(N, K, H - F + 1, H - F + 1)"),
            ("range(W - F + 1)", "range(H - F + 1)"),
        ),
        "test_conv2d_naive",
        "do not mix up H and W",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "computes the first image only",
        variant(CONV2D_NAIVE, ("for n in range(N):", "for n in range(1):")),
        "test_conv2d_naive",
        "every image n",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "forgets `return out`",
        variant(CONV2D_NAIVE, ("    return out\n", "")),
        "test_conv2d_naive",
        "forget to `return`",
    ),
    Wrong(
        "02_convolution",
        "conv2d_naive",
        "no ValueError for the wrong number of biases",
        variant(CONV2D_NAIVE, (" or b.shape != (K,)", "")),
        "test_conv2d_naive_errors",
        "one bias per filter",
    ),
    # -- 03_stride_padding ------------------------------------------------------------------
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "returns a float (/ instead of //)",
        variant(CONV_OUTPUT_SIZE, ("// stride + 1", "/ stride + 1")),
        "test_conv_output_size",
        "use // (integer division)",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "ignores the padding",
        variant(CONV_OUTPUT_SIZE, ("return (n + 2 * pad - f)", "return (n - f)")),
        "test_conv_output_size",
        "padding by (F - 1) / 2 keeps the size",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "no ValueError when the stride does not fit",
        variant(CONV_OUTPUT_SIZE, (" or (n + 2 * pad - f) % stride", "")),
        "test_conv_output_size_errors",
        "2.33 is not whole",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "an error message without the sizes",
        variant(
            CONV_OUTPUT_SIZE,
            (
                'f"a {f}x{f} filter does not fit {n}x{n}, stride {stride}, pad {pad}"',
                '"the filter does not fit"',
            ),
        ),
        "test_conv_output_size_errors",
        "expected its message to mention",
    ),
    Wrong(
        "03_stride_padding",
        "conv_output_size",
        "no ValueError for a filter larger than the input",
        variant(
            CONV_OUTPUT_SIZE,
            ("f > n + 2 * pad or ", ""),
            ("% stride:", "% stride and f <= n + 2 * pad:"),
        ),
        "test_conv_output_size_errors",
        "F > N + 2P",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "an integer array (np.zeros(..., dtype=int))",
        variant(ZERO_PAD, ("W + 2 * pad))", "W + 2 * pad), dtype=int)")),
        "test_zero_pad",
        "integer dtype",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "uses np.pad",
        "def zero_pad(x, pad):\n"
        "    if pad < 0:\n"
        "        raise ValueError(f'pad must be >= 0, got {pad}')\n"
        "    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n",
        "test_zero_pad",
        "from scratch",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "pads the rows only",
        variant(ZERO_PAD, ("W + 2 * pad))", "W))"), ("pad:pad + W] = x", ":] = x")),
        "test_zero_pad",
        "H + 2P",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "returns x itself for pad 0",
        variant(ZERO_PAD, ("    N, C, H, W", "    if pad == 0:\n        return x\n    N, C, H, W")),
        "test_zero_pad",
        "return a copy",
    ),
    Wrong(
        "03_stride_padding",
        "zero_pad",
        "no ValueError for a negative pad",
        variant(
            ZERO_PAD,
            ('    if pad < 0:\n        raise ValueError(f"pad must be >= 0, got {pad}")\n', ""),
        ),
        "test_zero_pad",
        "negative pad is an error",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "forgets to pad",
        variant(CONV2D, ("xp = zero_pad(x, pad)", "xp = x")),
        "test_conv2d",
        "pad x with your zero_pad first",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "forgets the biases",
        variant(CONV2D, (".T + b", ".T")),
        "test_conv2d",
        "biases are missing",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "ignores the stride when sliding",
        variant(
            CONV2D,
            (
                "xp[:, :, i * stride:i * stride + F, j * stride:j * stride + F]",
                "xp[:, :, i:i + F, j:j + F]",
            ),
        ),
        "test_conv2d",
        "windows start at rows and columns 0, 2, 4",
    ),
    Wrong(
        "03_stride_padding",
        "conv2d",
        "no ValueError for mismatched channels",
        variant(
            CONV2D,
            ('    if Cw != C:\n        raise ValueError(f"x has {C} channels, w has {Cw}")\n', ""),
            (
                "block.reshape(N, -1) @ w.reshape(K, -1).T + b",
                "[np.sum(block * w[k], axis=(1, 2, 3)) + b[k] for k in range(K)]",
            ),
            ("out[:, :, i, j] =", "out[:, :, i, j] = np.transpose("),
            ("for k in range(K)]", "for k in range(K)])"),
        ),
        "test_conv2d_errors",
        "full depth of its input",
    ),
    # -- 04_one_by_one -----------------------------------------------------------------------
    Wrong(
        "04_one_by_one",
        "conv1x1",
        "forgets the biases",
        variant(CONV1X1, (" + b[:, None]", "")),
        "test_conv1x1",
        "bias is missing",
    ),
    Wrong(
        "04_one_by_one",
        "conv1x1",
        "reshapes x to (N, H*W, C) without a transpose",
        variant(CONV1X1, ("x.reshape(N, C, H * W)", "x.reshape(N, H * W, C).transpose(0, 2, 1)")),
        "test_conv1x1",
        "keeps each pixel's C channels in one column",
    ),
    Wrong(
        "04_one_by_one",
        "conv1x1",
        "reshapes back to (N, K, W, H)",
        variant(CONV1X1, ("out.reshape(N, K, H, W)", "out.reshape(N, K, W, H)")),
        "test_conv1x1",
        "H rows, then W columns",
    ),
    Wrong(
        "04_one_by_one",
        "conv1x1",
        "no ValueError for 3x3 filters (NumPy's reshape error instead)",
        variant(CONV1X1, ("w.shape[2:] != (1, 1) or ", "")),
        "test_conv1x1",
        "not a ValueError of its own",
    ),
    Wrong(
        "04_one_by_one",
        "conv1x1",
        "uses torch's conv2d",
        "import torch\n\ndef conv1x1(x, w, b):\n"
        "    if np.shape(w)[2:] != (1, 1) or np.shape(w)[1] != np.shape(x)[1]:\n"
        "        raise ValueError('bad shapes')\n"
        "    t = torch.from_numpy\n"
        "    return torch.nn.functional.conv2d(t(x), t(w), t(b)).numpy()\n",
        "test_conv1x1",
        "from scratch",
    ),
    Wrong(
        "04_one_by_one",
        "conv_layer_summary",
        "forgets the biases in the count",
        variant(LAYER_SUMMARY, (" * k + k", " * k")),
        "test_conv_layer_summary",
        "plus K biases",
    ),
    Wrong(
        "04_one_by_one",
        "conv_layer_summary",
        "forgets the depth C in the weights",
        variant(LAYER_SUMMARY, ("f * f * c * k", "f * f * k")),
        "test_conv_layer_summary",
        "full depth C",
    ),
    Wrong(
        "04_one_by_one",
        "conv_layer_summary",
        "returns the shape as (N', N', K)",
        variant(LAYER_SUMMARY, ("return (k, n_out, n_out)", "return (n_out, n_out, k)")),
        "test_conv_layer_summary",
        "K first",
    ),
    Wrong(
        "04_one_by_one",
        "conv_layer_summary",
        "a float side (/ instead of //)",
        variant(LAYER_SUMMARY, ("// stride + 1", "/ stride + 1")),
        "test_conv_layer_summary",
        "use // (integer division)",
    ),
    Wrong(
        "04_one_by_one",
        "conv_layer_summary",
        "no ValueError when the stride does not fit",
        variant(LAYER_SUMMARY, (" or (n + 2 * pad - f) % stride", "")),
        "test_conv_layer_summary",
        "14.5 is not whole",
    ),
    Wrong(
        "04_one_by_one",
        "fitting_pad",
        "returns (F - 1) // 2 always",
        "def fitting_pad(n, f, stride):\n    return (f - 1) // 2\n",
        "test_fitting_pad",
        "already fits",
    ),
    Wrong(
        "04_one_by_one",
        "fitting_pad",
        "forgets that the filter must fit (F <= N + 2P)",
        variant(FITTING_PAD, ("f <= n + 2 * pad and ", "")),
        "test_fitting_pad",
        "the filter must fit first",
    ),
    Wrong(
        "04_one_by_one",
        "fitting_pad",
        "returns None when no P fits",
        variant(FITTING_PAD, ("    raise ValueError(", "    return None\n    raise ValueError(")),
        "test_fitting_pad",
        "no padding fits",
    ),
    # -- 05_pooling ---------------------------------------------------------------------------
    Wrong(
        "05_pooling",
        "max_pool_forward",
        "starts the running max at 0",
        variant(MAX_FORWARD, ("window.max(axis=(2, 3))", "np.maximum(window.max(axis=(2, 3)), 0)")),
        "test_max_pool_forward_random",
        "do not start the running max at 0",
    ),
    Wrong(
        "05_pooling",
        "max_pool_forward",
        "steps windows by the size, not the stride",
        variant(
            MAX_FORWARD,
            (
                "x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]",
                "x[:, :, i * size:i * size + size, j * size:j * size + size]",
            ),
        ),
        "test_max_pool_forward_random",
        "with S < F they overlap",
    ),
    Wrong(
        "05_pooling",
        "max_pool_forward",
        "no ValueError when the window does not fit (floors)",
        variant(MAX_FORWARD, (" or (H - size) % stride or (W - size) % stride", "")),
        "test_max_pool_forward_random",
        "2.5 windows",
    ),
    Wrong(
        "05_pooling",
        "max_pool_forward",
        "uses torch's max_pool2d",
        "import torch\n\ndef max_pool_forward(x, size=2, stride=2):\n"
        + POOL_CHECKS
        + "    return torch.nn.functional.max_pool2d(torch.from_numpy(x), size, stride).numpy()\n",
        "test_max_pool_forward_slides",
        "from scratch",
    ),
    Wrong(
        "05_pooling",
        "max_pool_backward",
        "`=` instead of `+=` (overlapping windows)",
        variant(MAX_BACKWARD, ("+= dout[n, c, i, j]", "= dout[n, c, i, j]")),
        "test_max_pool_backward_random",
        "do not overwrite it",
    ),
    Wrong(
        "05_pooling",
        "max_pool_backward",
        "all-ties mask (window == max)",
        variant(
            MAX_BACKWARD,
            ("                    a, d = np.unravel_index(np.argmax(window), window.shape)\n", ""),
            (
                "dx[n, c, i * stride + a, j * stride + d] += dout[n, c, i, j]",
                "dx[n, c, i * stride:i * stride + size, j * stride:j * stride + size] += "
                "(window == window.max()) * dout[n, c, i, j]",
            ),
        ),
        "test_max_pool_backward_random",
        "EVERY tied entry",
    ),
    Wrong(
        "05_pooling",
        "max_pool_backward",
        "ties share the gradient",
        variant(
            MAX_BACKWARD,
            (
                "                    a, d = np.unravel_index(np.argmax(window), window.shape)\n",
                "                    mask = window == window.max()\n",
            ),
            (
                "dx[n, c, i * stride + a, j * stride + d] += dout[n, c, i, j]",
                "dx[n, c, i * stride:i * stride + size, j * stride:j * stride + size] += "
                "mask * dout[n, c, i, j] / mask.sum()",
            ),
        ),
        "test_max_pool_backward_random",
        "not shared among the tied entries",
    ),
    Wrong(
        "05_pooling",
        "max_pool_backward",
        "forgets `return dx`",
        variant(MAX_BACKWARD, ("    return dx\n", "")),
        "test_max_pool_backward_slides",
        "forget to `return`",
    ),
    Wrong(
        "05_pooling",
        "avg_pool",
        "sums the windows instead of averaging",
        variant(AVG_POOL, ("window.mean(axis=(2, 3))", "window.sum(axis=(2, 3))")),
        "test_avg_pool_forward",
        "divide by F * F",
    ),
    Wrong(
        "05_pooling",
        "avg_pool",
        "backward without the 1 / F^2",
        variant(AVG_POOL, (" / (size * size)", "")),
        "test_avg_pool_backward",
        "divide dout by F * F",
    ),
    Wrong(
        "05_pooling",
        "avg_pool",
        "backward with `=` instead of `+=`",
        variant(AVG_POOL, ("] += share", "] = share")),
        "test_avg_pool_backward",
        "do not overwrite it",
    ),
    # -- 06_conv_backward ---------------------------------------------------------------------
    Wrong(
        "06_conv_backward",
        "numerical_gradient",
        "one-sided differences",
        variant(
            NUMERICAL_GRADIENT,
            ("        x[i] = old - h\n        minus", "        x[i] = old\n        minus"),
            ("(2 * h)", "h"),
        ),
        "test_numerical_gradient_cube",
        "one-sided difference",
    ),
    Wrong(
        "06_conv_backward",
        "numerical_gradient",
        "ignores the h it is given",
        variant(NUMERICAL_GRADIENT, ("h=1e-5):\n", "h=1e-5):\n    h = 1e-5\n")),
        "test_numerical_gradient_cube",
        "use the h you are given",
    ),
    Wrong(
        "06_conv_backward",
        "numerical_gradient",
        "does not put x back",
        variant(NUMERICAL_GRADIENT, ("        x[i] = old\n", "")),
        "test_numerical_gradient_cube",
        "restore each element",
    ),
    Wrong(
        "06_conv_backward",
        "numerical_gradient",
        "perturbs a copy of x",
        variant(
            NUMERICAL_GRADIENT,
            (
                "    for i in np.ndindex(x.shape):\n",
                "    x = x.copy()\n    for i in np.ndindex(x.shape):\n",
            ),
        ),
        "test_numerical_gradient_general",
        "perturbed a copy of x",
    ),
    Wrong(
        "06_conv_backward",
        "conv_backward",
        "db summed over the positions only, (N, K)",
        variant(CONV_BACKWARD, ("dout.sum(axis=(0, 2, 3))", "dout.sum(axis=(2, 3))")),
        "test_conv_backward_db",
        "db[k] sums dout[:, k] over N, H', W'",
    ),
    Wrong(
        "06_conv_backward",
        "conv_backward",
        "windows of the unpadded x",
        variant(CONV_BACKWARD, ("* xp[n, :, rows, cols]", "* x[n, :, rows, cols]")),
        "test_conv_backward_dw",
        "windows of the PADDED input",
    ),
    Wrong(
        "06_conv_backward",
        "conv_backward",
        "dx with `=` instead of `+=`",
        variant(CONV_BACKWARD, ("dxp[n, :, rows, cols] += ", "dxp[n, :, rows, cols] = ")),
        "test_conv_backward_dx",
        "do not overwrite it",
    ),
    Wrong(
        "06_conv_backward",
        "conv_backward",
        "dx keeps the padding",
        variant(CONV_BACKWARD, ("dx = dxp[:, :, P:P + H, P:P + W]", "dx = dxp")),
        "test_conv_backward_dx",
        "cut P off each side",
    ),
    Wrong(
        "06_conv_backward",
        "conv_backward",
        "no ValueError for a dout of the wrong shape",
        variant(
            CONV_BACKWARD,
            (
                "    if dout.shape != (N, K, Ho, Wo):\n"
                '        raise ValueError(f"dout {dout.shape}, expected {(N, K, Ho, Wo)}")\n',
                "",
            ),
        ),
        "test_conv_backward_dx",
        "compare dout.shape with (N, K, H', W')",
    ),
    # -- 01_fc_vs_conv -----------------------------------------------------------------------
    Wrong(
        "01_fc_vs_conv",
        "flatten",
        "channels last (N, H, W, C) order",
        variant(FLATTEN, ("np.reshape(x, (", "np.reshape(np.transpose(x, (0, 2, 3, 1)), (")),
        "test_flatten",
        "read channel 0 row by row",
    ),
    Wrong(
        "01_fc_vs_conv",
        "flatten",
        "no ValueError for an image without the batch axis",
        variant(
            FLATTEN,
            (
                "    if np.ndim(x) != 4:\n"
                '        raise ValueError(f"expected (N, C, H, W), got shape {np.shape(x)}")\n',
                "",
            ),
        ),
        "test_flatten",
        "x must have 4 axes",
    ),
    Wrong(
        "01_fc_vs_conv",
        "fc_param_count",
        "forgets the biases",
        "def fc_param_count(n_in, n_out):\n    return n_in * n_out\n",
        "test_fc_param_count",
        "plus 10 biases",
    ),
    Wrong(
        "01_fc_vs_conv",
        "conv_param_count",
        "forgets the depth C",
        "def conv_param_count(f, c, k):\n    return (f * f + 1) * k\n",
        "test_conv_param_count",
        "5*5*3 weights",
    ),
    Wrong(
        "01_fc_vs_conv",
        "compare",
        "integer division for the ratio",
        "n_conv = conv_param_count(5, 3, 10)\n"
        "n_fc = fc_param_count(3072, 10240)\n"
        "ratio = n_fc // n_conv\n",
        "test_compare",
        "integer dtype",
    ),
    # -- 07_im2col -----------------------------------------------------------------------------
    Wrong(
        "07_im2col",
        "im2col",
        "rows in (a, d, c) order",
        variant(
            IM2COL,
            ("cols = np.empty((N, C, F, F, Ho, Wo))", "cols = np.empty((N, F, F, C, Ho, Wo))"),
            ("cols[:, :, a, d] =", "cols[:, a, d] ="),
        ),
        "test_im2col_random",
        "rows in (c, a, d) order",
    ),
    Wrong(
        "07_im2col",
        "im2col",
        "ignores the padding",
        variant(
            IM2COL,
            ("xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))", "xp = x"),
            (
                "Ho, Wo = (H + 2 * P - F) // S + 1, (W + 2 * P - F) // S + 1",
                "Ho, Wo = (H - F) // S + 1, (W - F) // S + 1",
            ),
        ),
        "test_im2col_random",
        "H' = (5 + 2 - 3) / 2 + 1 = 3",
    ),
    Wrong(
        "07_im2col",
        "im2col",
        "no ValueError when the stride does not fit",
        variant(IM2COL, (" or (n + 2 * P - F) % S", "")),
        "test_im2col_random",
        "Stride 3: it does not fit",
    ),
    Wrong(
        "07_im2col",
        "conv_im2col",
        "forgets the biases",
        variant(CONV_IM2COL, (" + b.reshape(K, 1)", "")),
        "test_conv_im2col",
        "biases are missing",
    ),
    Wrong(
        "07_im2col",
        "conv_im2col",
        "no ValueError for mismatched channels",
        variant(
            CONV_IM2COL,
            ('    if Cw != C:\n        raise ValueError(f"x has {C} channels, w has {Cw}")\n', ""),
            ("w.reshape(K, -1)", "w.reshape(K, -1)[:, :C * F * F]"),
        ),
        "test_conv_im2col",
        "raise ValueError when C differs",
    ),
    Wrong(
        "07_im2col",
        "speedup",
        "the ratio upside down",
        variant(SPEEDUP, ("return naive / fast", "return fast / naive")),
        "test_speedup",
        "upside down",
    ),
    Wrong(
        "07_im2col",
        "speedup",
        "forgets `return`",
        variant(SPEEDUP, ("return naive / fast", "naive / fast")),
        "test_speedup",
        "forget `return`",
    ),
    # -- 08_architectures ----------------------------------------------------------------------
    Wrong(
        "08_architectures",
        "lenet5",
        "no flatten before F6",
        "class LeNet5(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.c1, self.c3 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)\n"
        "        self.c5 = nn.Conv2d(16, 120, 5)\n"
        "        self.f6, self.out = nn.Linear(120, 84), nn.Linear(84, 10)\n\n"
        "    def forward(self, x):\n"
        "        x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)\n"
        "        x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)\n"
        "        x = torch.tanh(self.c5(x))\n"
        "        return self.out(torch.tanh(self.f6(x)))\n",
        "test_lenet5",
        "flatten it to (N, 120)",
    ),
    Wrong(
        "08_architectures",
        "lenet5_table",
        "C1 without its biases",
        "lenet5_table = {'C1': ((6, 28, 28), 150), 'S2': ((6, 14, 14), 0),\n"
        "    'C3': ((16, 10, 10), 2416), 'S4': ((16, 5, 5), 0), 'C5': ((120, 1, 1), 48120),\n"
        "    'F6': ((84,), 10164), 'OUTPUT': ((10,), 850)}\n",
        "test_lenet5_table",
        "K biases",
    ),
    Wrong(
        "08_architectures",
        "basic_block",
        "no shortcut (not residual)",
        variant(BASIC_BLOCK, ("F.relu(out + self.shortcut(x))", "F.relu(out)")),
        "test_basic_block_behaviour",
        "x is added back",
    ),
    Wrong(
        "08_architectures",
        "basic_block",
        "convolutions with biases",
        variant(
            BASIC_BLOCK,
            ("3, stride, 1, bias=False", "3, stride, 1"),
            ("3, 1, 1, bias=False", "3, 1, 1"),
        ),
        "test_basic_block_shapes",
        "convs without bias",
    ),
    Wrong(
        "08_architectures",
        "basic_block",
        "identity shortcut when the channels change",
        variant(BASIC_BLOCK, ("if stride != 1 or in_channels != out_channels:", "if stride != 1:")),
        "test_basic_block_shapes",
        "the same shape to be added",
    ),
    # -- 09_training ---------------------------------------------------------------------------
    Wrong(
        "09_training",
        "train_model",
        "forgets `return model`",
        variant(TRAIN_MODEL, ("    return model\n", "")),
        "test_validation_accuracy",
        "did it forget `return model`",
    ),
    Wrong(
        "09_training",
        "make_model",
        "forgets `return`",
        "def make_model():\n"
        "    nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.LazyLinear(10))\n",
        "test_make_model",
        "did it forget `return`",
    ),
]

# test cell -> every solution cell it calls, where that is more than the cell just above it
DEPENDS: dict[str, set[str]] = {
    "test_compare": {"fc_param_count", "conv_param_count", "compare"},
    "test_conv2d": {"conv_output_size", "zero_pad", "conv2d"},
    "test_conv2d_errors": {"conv_output_size", "zero_pad", "conv2d"},
    "test_conv_im2col": {"im2col", "conv_im2col"},
    "test_speedup": {"im2col", "conv_im2col", "speedup"},
    "test_validation_accuracy": {"make_model", "train_model"},
    "test_test_accuracy": {"make_model", "train_model"},
}


def grade_info(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def owners(nb) -> dict[str, str]:
    """test cell grade id -> the solution cell above it."""
    result, current = {}, None
    for cell in nb.cells:
        info = grade_info(cell)
        if info.get("solution") and cell.cell_type == "code":
            current = info["grade_id"]
        elif info.get("grade"):
            result[info["grade_id"]] = current
    return result


def rounds(wrongs: list[Wrong], owner: dict[str, str]) -> list[list[Wrong]]:
    """Group wrong answers into Validator runs where none can change another's test cell."""
    groups: list[list[Wrong]] = []
    for w in wrongs:
        for group in groups:
            cells = {g.cell for g in group}
            tests = {g.test for g in group}
            reads = set().union(*(DEPENDS.get(g.test, {owner[g.test]}) for g in group))
            mine = DEPENDS.get(w.test, {owner[w.test]})
            if w.cell not in cells | reads and w.test not in tests and not (mine & cells):
                group.append(w)
                break
        else:
            groups.append([w])
    return groups


class RecordingValidator:
    """nbgrader's Validator, keeping the executed notebook so tests can read every output."""

    def __init__(self):
        from nbgrader.validator import Validator

        class _Validator(Validator):
            def _preprocess(inner, nb):  # noqa: N805
                inner.executed = super()._preprocess(nb)
                return inner.executed

        from traitlets.config import Config

        # nbgrader_config.py's cell timeout (09 trains a network; a loaded machine is slow)
        self.validator = _Validator(config=Config({"Execute": {"timeout": 300}}))

    def run(self, path: Path):
        results = self.validator.validate(str(path))
        return results, self.validator.executed


def student_with(assignment: str, answers: dict[str, str]):
    """The student notebook with every solution cell answered: from ``answers``, else correctly."""
    student = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    correct = {
        grade_info(c)["grade_id"]: c.source for c in solution.cells if grade_info(c).get("solution")
    }
    for cell in student.cells:
        gid = grade_info(cell).get("grade_id")
        if grade_info(cell).get("solution"):
            cell.source = answers.get(gid, correct[gid])
    unknown = set(answers) - set(correct)
    assert not unknown, f"no solution cells {unknown} in {assignment}"
    return student


def validate(tmp_path: Path, assignment: str, nb):
    folder = tmp_path / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    return RecordingValidator().run(path)


def outputs_by_id(nb) -> dict[str, list]:
    return {
        grade_info(c)["grade_id"]: c.get("outputs", [])
        for c in nb.cells
        if grade_info(c).get("grade")
    }


def error_of(outputs) -> dict | None:
    errors = [o for o in outputs if o.output_type == "error"]
    return errors[0] if errors else None


WRONG_BY_ASSIGNMENT = {a: [w for w in WRONG if w.assignment == a] for a in ASSIGNMENTS}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if WRONG_BY_ASSIGNMENT[a]])
def test_wrong_answers_fail_visible_tests_with_their_hint(assignment, tmp_path, graded_env):
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    owner = owners(solution)
    problems = []
    for i, group in enumerate(rounds(WRONG_BY_ASSIGNMENT[assignment], owner)):
        nb = student_with(assignment, {w.cell: w.source for w in group})
        results, executed = validate(tmp_path / f"round{i}", assignment, nb)
        if "failed" not in results:
            problems.append(f"round {i} ({', '.join(w.name for w in group)}): nothing failed")
            continue
        outputs = outputs_by_id(executed)
        for w in group:
            err = error_of(outputs[w.test])
            if err is None:
                problems.append(f"{w.name!r} passed {w.test}")
                continue
            text = f"{err.ename}: {err.evalue}"
            if w.hint.lower() not in text.lower():
                problems.append(f"{w.name!r}: {w.test} failed without {w.hint!r}: {text}")
            if len(err.traceback) != 1:
                problems.append(f"{w.name!r}: {len(err.traceback)} traceback entries, expected 1")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_correct_answers_pass_with_one_line_each(assignment, tmp_path, graded_env):
    nb = student_with(assignment, {})
    results, executed = validate(tmp_path, assignment, nb)
    assert results == {}, json.dumps(results, indent=1)[:3000]
    for cell in executed.cells:
        info = grade_info(cell)
        if not info.get("grade"):
            continue
        outs = cell.get("outputs", [])
        lines = "".join(o.get("text", "") for o in outs).splitlines()
        assert [o.output_type for o in outs] == ["stream"] and outs[0].name == "stdout", (
            info["grade_id"],
            outs,
        )
        assert len(lines) == 1 and lines[0].startswith("\u2713 "), (info["grade_id"], lines)
        points = float(re.search(r"\((\S+) points?\)$", lines[0]).group(1))
        assert points == float(info["points"]), (info["grade_id"], lines[0], info["points"])


def test_every_graded_cell_ends_with_its_pass_line():
    """Static: the last statement of every test cell is ``passed(..., points=<its points>)``."""
    import ast

    for assignment in ASSIGNMENTS:
        nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        for cell in nb.cells:
            info = grade_info(cell)
            if not info.get("grade"):
                continue
            last = ast.parse(cell.source).body[-1]
            call = getattr(last, "value", None)
            assert isinstance(call, ast.Call) and getattr(call.func, "id", "") == "passed", (
                f"{assignment}/{info['grade_id']}: the cell must end with passed(...)"
            )
            points = {k.arg: ast.literal_eval(k.value) for k in call.keywords}.get("points")
            assert points == info["points"], f"{assignment}/{info['grade_id']}: points={points}"


def test_docs_table_names_every_wrong_answer():
    text = (ROOT / "docs" / "exercises.md").read_text()
    missing = [f"{w.assignment}: {w.name}" for w in WRONG if f"| {w.name} |" not in text]
    assert not missing, "docs/exercises.md lacks the wrong answers:\n" + "\n".join(missing)
