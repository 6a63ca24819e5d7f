"""The honest notebooks every hostile case starts from, per assignment.

* ``stub``: the release notebook as handed out (every answer raises NotImplementedError);
* ``solution``: every answer is the instructor's (``demo.sample_submission(..., "correct")``);
* ``partial``: the first half of the answers solved (the demo's half-done student);
* ``zeros``: answers that check their input and raise as asked, then return zeros of the right
  shape (what a student who read the tests but did no arithmetic hands in);
* ``plaincheat``: the solution, but the from-scratch answer calls the reference openly (what every
  from-scratch bypass must score: the grader's verdict on the plain call);
* ``plainnumpy``: the same with a forbidden NumPy function called openly (the verdict every NumPy
  bypass must get; 03's ``plaincheat`` already is one: ``numpy.pad``).

Each base is also graded as an honest student of its own (``base_student``), in the same batch.
"""

from __future__ import annotations

import copy

from cnnlab.instructor import demo

from .case import cell

ZEROS = {
    "02_convolution": {
        "conv_single_step": '''def conv_single_step(x_slice, w, b):
    """Zeros: checks the shapes, does no arithmetic."""
    if np.shape(x_slice) != np.shape(w):
        raise ValueError(f"x_slice {np.shape(x_slice)} and w {np.shape(w)} differ")
    return 0.0''',
        "conv2d_naive": '''def conv2d_naive(x, w, b):
    """Zeros of the right shape; raises ValueError for shapes that do not go together."""
    N, C, H, W = np.shape(x)
    K, Cw, F, F2 = np.shape(w)
    if Cw != C or np.shape(b) != (K,) or F > H or F2 > W:
        raise ValueError(f"x {np.shape(x)}, w {np.shape(w)}, b {np.shape(b)} do not go together")
    return np.zeros((N, K, H - F + 1, W - F2 + 1))''',
    },
}

PLAIN_CHEATS = {
    "02_convolution": {
        "conv2d_naive": '''import cnnlab.nn


def conv2d_naive(x, w, b):
    return cnnlab.nn.conv2d(x, w, b)''',
    },
    "07_im2col": {  # the sandbox of 07 may import cnnlab.nn (the speed-up is timed against it)
        "im2col": '''import cnnlab.nn


def im2col(x, F, stride=1, pad=0):
    return cnnlab.nn.im2col(x, F, stride=stride, pad=pad)''',
        "conv_im2col": '''def conv_im2col(x, w, b, stride=1, pad=0):
    return cnnlab.nn.conv2d(x, w, b, stride=stride, pad=pad)''',
    },
    "03_stride_padding": {
        "zero_pad": '''def zero_pad(x, pad):
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    return np.pad(np.asarray(x), ((0, 0), (0, 0), (pad, pad), (pad, pad)))''',
    },
}

PLAIN_NUMPY = {
    "02_convolution": {
        "conv2d_naive": '''def conv2d_naive(x, w, b):
    x, w, b = (np.asarray(a, dtype=float) for a in (x, w, b))
    if w.shape[1] != x.shape[1] or b.shape != (w.shape[0],) or w.shape[2] > x.shape[2] \\
            or w.shape[3] > x.shape[3]:
        raise ValueError(f"x {x.shape}, w {w.shape}, b {b.shape} do not go together")
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))
    return np.einsum("nchwij,kcij->nkhw", win, w) + b[None, :, None, None]''',
    },
}

KINDS = ("stub", "solution", "partial", "zeros", "plaincheat", "plainnumpy")


def base_student(assignment: str, base: str) -> str:
    """The honest student graded with each base: ``h02zeros``, ``h03solution``, ..."""
    return f"h{assignment[:2]}{base}"


def base_notebook(assignment: str, base: str, source_nb, release_nb):
    """The honest notebook ``base`` of ``assignment`` (see the module docstring)."""
    if base not in KINDS:
        raise ValueError(f"base {base!r} is not one of {KINDS}")
    if base in ("stub", "solution", "partial"):
        kind = {"stub": "blank", "solution": "correct", "partial": "partial"}[base]
        return demo.sample_submission(source_nb, release_nb, kind)
    table = {"zeros": ZEROS, "plaincheat": PLAIN_CHEATS, "plainnumpy": PLAIN_NUMPY}[base]
    if assignment not in table:
        raise ValueError(f"no {base!r} answers written for {assignment}")
    start = release_nb if base == "zeros" else demo.sample_submission(source_nb, release_nb,
                                                                      "correct")
    nb = copy.deepcopy(start)
    for gid, code in table[assignment].items():
        cell(nb, gid).source = code
    return nb
