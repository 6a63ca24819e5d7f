"""The convolution layer tuned for speed: the same numbers as :mod:`cnnlab.nn.conv`, faster.

Used where time counts (:mod:`cnnlab.numpy_net`, ``benchmarks/bench_conv.py``); a reader studies
:func:`cnnlab.nn.conv2d` instead, and tests check the two agree on every sweep. Same arguments,
shapes, dtypes and errors:

    x: (N, C, H, W)   w: (K, C, F, F)   b: (K,) or None   out: (N, K, H', W')
    H' = (H + 2P - F) / S + 1

What is different from the readable version, and why:

- **Images split between threads, OpenBLAS on one.** Each of T threads (as many as NumPy's
  OpenBLAS may use) takes a share of the batch and runs the whole pipeline on it: column gather,
  product, and in the backward pass the scatter of the column gradients. Meanwhile OpenBLAS runs
  on one thread (each of our threads calls it), so the copies run on every core too, not only
  the products, and no OpenBLAS thread is left spinning after the call, taking a core from
  whatever runs next.
- **A few images at a time.** The columns of a few images, ``(n, C*F*F, H'*W')`` with about
  ``CHUNK`` values, are gathered and multiplied while they are still in cache, and the product
  is written straight into the ``(N, K, H', W')`` result: no layout copy of the output.
- **Few small NumPy calls while the threads run**: each waits for the interpreter lock while the
  other thread holds it. Each thread keeps its padded buffers, borders zeroed once, and their
  window views (:func:`_padded_windows`): padding a share is one copy. The bias is one more
  column of the filter matrix, times a row of ones in the columns: no extra pass over the
  output.
- Small layers stay on one thread; large temporaries live in reused, 64-byte-aligned buffers
  (:mod:`._workspace`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cnnlab.nn._workspace import scratch
from cnnlab.nn.conv import conv2d_backward as readable_backward
from cnnlab.nn.conv import prepare, prepare_backward
from cnnlab.nn.im2col import _windows

__all__ = ["conv2d", "conv2d_backward"]

#: Layers whose columns hold at most this many values count as small: their backward pass is
#: the readable one (its per-image products cost less than this module's copies there).
SMALL = 2**18
#: Values of columns gathered at a time (8 MiB of float32, about what stays in cache between the
#: gather and the product).
CHUNK = 2**21
#: Layers with fewer multiply-adds than this in all stay on one thread: handing out the work
#: costs tens of microseconds (x (32, 1, 8, 8), w (16, 1, 3, 3): 47 us on one thread, 81 us on
#: two, AMD VM; a submit-and-wait round trip to the pool is about 50 us on the Xeon VM).
THREADED_WORK = 2**23
#: Threads to split the images between; None: as many as NumPy's OpenBLAS may use now (so that
#: ``threadpoolctl.threadpool_limits(1)`` applies here too).
THREADS: int | None = None


# ---------------------------------------------------------------------------------------------
# Padding and windows
# ---------------------------------------------------------------------------------------------


#: Padded buffers kept per thread (see :func:`_padded_windows`).
PADDED_KEPT = 4
_kept = threading.local()


def _padded_windows(x: np.ndarray, F, S, P, Ho, Wo) -> np.ndarray:
    """The windows ``(N, C, F, F, H', W')`` of x zero padded by P. The padded copy lives in a
    buffer kept for this thread and this shape, whose borders were zeroed once and are never
    written again, so each call is one copy of x (and no new view): while threads share a batch,
    each small NumPy call waits for the interpreter lock, and the padding's five calls took
    0.13-0.37 ms of a 0.8 ms first layer. Up to ``PADDED_KEPT`` shapes, the least recent out."""
    if not P:
        return _windows(x, F, S, Ho, Wo)
    key = (x.shape, x.dtype.str, P, F, S)
    kept = _kept.__dict__.setdefault("buffers", {})
    hit = kept.pop(key, None)
    if hit is None:
        N, C, H, W = x.shape
        xp = np.zeros((N, C, H + 2 * P, W + 2 * P), dtype=x.dtype)
        hit = (xp[:, :, P : P + H, P : P + W], _windows(xp, F, S, Ho, Wo))
        while len(kept) >= PADDED_KEPT:
            kept.pop(next(iter(kept)))                # the least recently used
    kept[key] = hit                                   # most recent last
    interior, windows = hit
    np.copyto(interior, x)
    return windows


def _per_chunk(N, rows, L) -> int:
    """Images per chunk: columns ``(n, rows, L)`` of about CHUNK values, at least one image."""
    return max(1, min(N, CHUNK // (rows * L)))


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------


@functools.cache
def _blas():
    """threadpoolctl's handle on NumPy's own OpenBLAS (not SciPy's, which may be loaded too), or
    None where threadpoolctl cannot see one or is not there (a grading sandbox shows cnnlab.nn
    without the rest of the environment)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    numpys = [lib for lib in libs if "numpy" in lib.filepath]
    return (numpys or libs or [None])[0]


_blas_lock = threading.Lock()
_blas_users = 0          # calls inside _blas_on_one_thread now
_blas_saved = 1          # NumPy's BLAS threads before the first of them set it to one


def threads() -> int:
    """How many threads the images are split between: ``THREADS``, else NumPy's BLAS threads
    (as they were before a call running now set them to one)."""
    if THREADS is not None:
        return THREADS
    blas = _blas()
    if blas is None:
        return 1
    with _blas_lock:
        return max(1, _blas_saved if _blas_users else blas.get_num_threads())


@contextlib.contextmanager
def _blas_on_one_thread():
    """NumPy's OpenBLAS on one thread while our threads run (each calls it for its own
    products); restored when the last call that asked for it ends. The setting is the process's:
    meanwhile, products in other threads of the caller's program run on one thread too."""
    global _blas_users, _blas_saved
    blas = _blas()
    if blas is None:
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = blas.get_num_threads()
            blas.set_num_threads(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                blas.set_num_threads(_blas_saved)


_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, made anew in a forked child (the parent's threads are
    not there)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] < workers:
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)        # too few workers: its threads end when idle
            pool = ThreadPoolExecutor(workers, thread_name_prefix="cnnlab-conv")
            _pool = (os.getpid(), workers, pool)
        return _pool[2]


def _split_images(N: int, work: int, fn: Callable, sliced: tuple, *shared) -> list:
    """``fn(*[a[lo:hi] for a in sliced], *shared)`` for shares ``[lo, hi)`` of the N images, one
    share per thread when the layer's ``work`` (multiply-adds) is worth it (``THREADED_WORK``);
    the results in the shares' order. The first share runs in this thread."""
    T = min(N, threads()) if work >= THREADED_WORK else 1
    if T == 1:
        return [fn(*sliced, *shared)]
    bounds = [N * t // T for t in range(T + 1)]     # shares differ by one image at most
    parts = [[a[lo:hi] for a in sliced] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    with _blas_on_one_thread():
        results: list = [None] * T
        futures = {}
        for t in range(1, T):
            try:
                futures[t] = _executor(T - 1).submit(fn, *parts[t], *shared)
            except RuntimeError:  # "can't start new thread" (a process limit, a sandbox): here
                results[t] = fn(*parts[t], *shared)
        results[0] = fn(*parts[0], *shared)
        for t, future in futures.items():
            results[t] = future.result()            # re-raises a worker's error here
    return results


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------


def conv2d(x, w, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Convolution ``(N, C, H, W) * (K, C, F, F) -> (N, K, H', W')``, as
    :func:`cnnlab.nn.conv2d` (``b`` may be None), tuned for speed.

    >>> x = np.random.default_rng(0).normal(size=(2, 3, 7, 7))
    >>> w = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
    >>> from cnnlab.nn import conv2d as readable
    >>> bool(np.allclose(conv2d(x, w, None, 2, 1), readable(x, w, None, 2, 1)))
    True
    """
    x, w, b, S, P, Ho, Wo = prepare(x, w, b, stride, pad)
    N = x.shape[0]
    K, C, F, _ = w.shape
    R = C * F * F
    out = np.empty((N, K, Ho, Wo), dtype=x.dtype)
    out3 = out.reshape(N, K, Ho * Wo)
    # the bias as one more column of the filter matrix: (K, C*F*F + 1)
    w_b = w.reshape(K, R) if b is None else np.concatenate([w.reshape(K, R), b[:, None]], axis=1)
    _split_images(N, N * K * R * Ho * Wo, _forward_share, (x, out3), w_b, F, S, P, Ho, Wo)
    return out


def _forward_share(x: np.ndarray, out: np.ndarray, w_b: np.ndarray, F, S, P, Ho, Wo) -> None:
    """One thread's images: ``out (n, K, H'*W') = w_b @ columns``, the columns ``(C*F*F, H'*W')``
    of a few images at a time copied from the windows of the padded ``x``, plus a row of ones
    when ``w_b`` carries the bias."""
    windows = _padded_windows(x, F, S, P, Ho, Wo)
    N, C = x.shape[:2]
    R, L = C * F * F, Ho * Wo
    n = _per_chunk(N, w_b.shape[1], L)
    cols = scratch("cols", (n, w_b.shape[1], L), out.dtype)
    cols[:, R:] = 1                                  # the bias's row (none without a bias)
    for start in range(0, N, n):
        m = min(n, N - start)
        np.copyto(cols[:m, :R].reshape(m, C, F, F, Ho, Wo), windows[start : start + m])
        np.matmul(w_b, cols[:m], out=out[start : start + m])  # (K, R) @ (m, R, H'*W')


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------


def conv2d_backward(dout, x, w, stride: int = 1, pad: int = 0):
    """Gradients ``(dx, dw, db)`` of a convolution, as :func:`cnnlab.nn.conv2d_backward`."""
    dout, x, w, S, P, Ho, Wo = prepare_backward(dout, x, w, stride, pad)
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    R = C * F * F
    if R * N * Ho * Wo <= SMALL:
        # small layers: the readable version's per-image products cost less than the layout
        # copies below (measured 0.60 ms against 0.63-0.87 ms, x (32, 16, 4, 4), w (32, 16, 3, 3))
        return readable_backward(dout, x, w, S, P)
    dx = np.empty_like(x)
    # stride 1: dx is the convolution of dout, padded by F - 1 - P, with the filters flipped and
    # their channel axes swapped (K <-> C): a gather of K*F*F rows and a product instead of the
    # product and scatter-add of C*F*F rows. Worth it where K <= C: x (32, 64, 32, 32),
    # w (64, 64, 3, 3) 28.8 ms against 32.8 ms; with C = 3, K = 32 it was 6.3 against 2.7 ms.
    w_flip = (w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].reshape(C, K * F * F)
              if S == 1 and P <= F - 1 and K <= C else None)
    shares = _split_images(N, N * K * R * Ho * Wo, _backward_share, (x, dout, dx),
                           w.reshape(K, R), w_flip, F, S, P, Ho, Wo)
    dw = np.sum(shares, axis=0)                     # (K, C*F*F), summed over the threads
    return dx, dw.reshape(K, C, F, F), dout.sum(axis=(0, 2, 3))


def _backward_share(x, dout, dx, w2, w_flip, F, S, P, Ho, Wo) -> np.ndarray:
    """One thread's images: ``dx (n, C, H, W)`` written in place, returns their
    ``dw (K, C*F*F)``. dx is the convolution of dout with ``w_flip`` where given, else the
    column gradients ``w2^T @ dout`` added back into the gradient of the padded input
    (overlaps summed)."""
    N, C, H, W = x.shape
    R, L = C * F * F, Ho * Wo
    K = w2.shape[0]
    dt = dout.dtype
    dout3 = dout.reshape(N, K, L)
    windows = _padded_windows(x, F, S, P, Ho, Wo)
    scatter = w_flip is None
    if scatter:
        dxp = dx if not P else scratch("dpadded", (N, C, H + 2 * P, W + 2 * P), dt)
        dxp.fill(0)
        dwindows = _windows(dxp, F, S, Ho, Wo, writeable=True)
    n = _per_chunk(N, R, L)
    if scatter:
        dcols = scratch("dcols", (n, R, L), dt)
    cols = scratch("cols", (n, R, L), dt)
    part = scratch("dw", (n, K, R), dt)
    dw = np.zeros((K, R), dtype=dt)
    for start in range(0, N, n):
        m = min(n, N - start)
        d = dout3[start : start + m]                              # (m, K, H'*W')
        np.copyto(cols[:m].reshape(m, C, F, F, Ho, Wo), windows[start : start + m])
        np.matmul(d, cols[:m].transpose(0, 2, 1), out=part[:m])   # (m, K, L) @ (m, L, R)
        dw += part[:m].sum(axis=0)
        if scatter:
            np.matmul(w2.T, d, out=dcols[:m])                     # (R, K) @ (m, K, L)
            d6 = dcols[:m].reshape(m, C, F, F, Ho, Wo)
            dwin = dwindows[start : start + m]
            for i in range(F):
                for j in range(F):
                    dwin[:, :, i, j] += d6[:, :, i, j]   # one offset at a time: no self-overlap
    if not scatter:
        # (x's columns are not needed any more: their scratch buffer "cols" is reused)
        _forward_share(dout, dx.reshape(N, C, H * W), w_flip, F, 1, F - 1 - P, H, W)
    elif P:
        dx[...] = dxp[:, :, P : P + H, P : P + W]
    return dw
