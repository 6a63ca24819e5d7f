"""conv2d_naive, conv2d, conv2d_backward against torch.nn.functional.conv2d and autograd (float64),
against the numerical gradient, and against each other; hypothesis sweeps of shapes, strides and
paddings, including the ones that must raise. Every test runs the readable layer (cnnlab.nn) and
the tuned one (cnnlab.nn.fast, each of its forward paths), and the sweeps check the two agree.

Tolerances: float64 forward/backward vs torch rel_error < 1e-9; vs the central-difference gradient
rel_error < 1e-6; float32 vs torch float32 rtol 1e-4.
"""

from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnlab.gradcheck import numerical_gradient, rel_error
from cnnlab.nn import conv2d, conv2d_backward, conv2d_naive, fast


def fast_large(x, w, b, stride=1, pad=0):
    """fast.conv2d as for a large layer: strided column copies, one image at a time."""
    with mock.patch.object(fast, "SMALL", 0), mock.patch.object(fast, "CHUNK", 1):
        return fast.conv2d(x, w, b, stride, pad)


def two_images_a_chunk(N, rows, L):
    """In place of fast._per_chunk: two images a chunk, whatever their size."""
    return min(N, 2)


def fast_chunked(x, w, b, stride=1, pad=0):
    """fast.conv2d as for a large layer with the columns of two images gathered at a time (with
    N odd the last chunk holds one image)."""
    with (mock.patch.object(fast, "SMALL", 0),
          mock.patch.object(fast, "_per_chunk", two_images_a_chunk)):
        return fast.conv2d(x, w, b, stride, pad)


def fast_threaded(x, w, b, stride=1, pad=0, threads=3):
    """fast.conv2d as for a large layer with the images split between ``threads`` threads,
    whatever the work (with N < threads, fewer; the shares differ by one)."""
    with (mock.patch.object(fast, "THREADS", threads),
          mock.patch.object(fast, "THREADED_WORK", 0), mock.patch.object(fast, "SMALL", 0)):
        return fast.conv2d(x, w, b, stride, pad)


def fast_backward_large(dout, x, w, stride=1, pad=0):
    """fast.conv2d_backward as for a large layer: strided columns, one image at a time."""
    with mock.patch.object(fast, "SMALL", 0), mock.patch.object(fast, "CHUNK", 1):
        return fast.conv2d_backward(dout, x, w, stride, pad)


def fast_backward_chunked(dout, x, w, stride=1, pad=0):
    """fast.conv2d_backward as for a large layer, two images a chunk (with N odd the last chunk
    holds one image)."""
    with (mock.patch.object(fast, "SMALL", 0),
          mock.patch.object(fast, "_per_chunk", two_images_a_chunk)):
        return fast.conv2d_backward(dout, x, w, stride, pad)


def fast_backward_threaded(dout, x, w, stride=1, pad=0):
    """fast.conv2d_backward as for a large layer, the images split between two threads (three
    images: shares of one and two) and two images a chunk (each thread's dw summed)."""
    with (mock.patch.object(fast, "THREADS", 2), mock.patch.object(fast, "THREADED_WORK", 0),
          mock.patch.object(fast, "SMALL", 0),
          mock.patch.object(fast, "_per_chunk", two_images_a_chunk)):
        return fast.conv2d_backward(dout, x, w, stride, pad)


FORWARDS = {"readable": conv2d, "fast": fast.conv2d, "fast large": fast_large,
            "fast chunked": fast_chunked, "fast threaded": fast_threaded}
BACKWARDS = {"readable": conv2d_backward, "fast": fast.conv2d_backward,
             "fast large": fast_backward_large, "fast chunked": fast_backward_chunked,
             "fast threaded": fast_backward_threaded}
forwards = pytest.mark.parametrize("conv", FORWARDS.values(), ids=FORWARDS.keys())
backwards = pytest.mark.parametrize("conv_bwd", BACKWARDS.values(), ids=BACKWARDS.keys())


def close(a, b):
    """Sweeps compare elementwise with rtol 1e-9 plus atol 1e-12: a random entry that happens to be
    near zero would make a max-relative-error check flaky (its 1e-16 rounding reads as large)."""
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


TOL_TORCH = 1e-9
TOL_NUM = 1e-6
SWEEP = settings(max_examples=30, deadline=None)


def torch_conv(x, w, b, S, P, dout=None):
    """Forward with torch, and (dx, dw, db) by autograd when dout is given."""
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = TF.conv2d(xt, wt, bt, stride=S, padding=P)
    if dout is None:
        return out.detach().numpy()
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@st.composite
def conv_case(draw, max_f=4):
    """A valid (x, w, b, S, P): pick the output size first so the filter always fits."""
    N, C, K = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    F, S = draw(st.integers(1, max_f)), draw(st.integers(1, 3))
    P = draw(st.integers(0, (F - 1) // 2 + 1))
    Ho, Wo = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = (Ho - 1) * S + F - 2 * P, (Wo - 1) * S + F - 2 * P
    assume(H >= 1 and W >= 1)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, C, H, W))
    w = rng.normal(size=(K, C, F, F))
    b = rng.normal(size=K)
    return x, w, b, S, P, (N, K, Ho, Wo), rng


@pytest.mark.parametrize(
    "x_shape, w_shape, S, P",
    [
        ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0),
        ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1),
        ((3, 2, 6, 9), (5, 2, 3, 3), 1, 1),      # non-square
        ((2, 4, 5, 5), (3, 4, 1, 1), 1, 0),      # 1x1 filters
        ((2, 4, 7, 9), (3, 4, 1, 1), 2, 0),      # 1x1 with stride
        ((1, 3, 13, 13), (2, 3, 5, 5), 3, 2),
        ((2, 1, 4, 4), (2, 1, 4, 4), 1, 0),      # filter as large as the input
        ((2, 2, 8, 8), (3, 2, 2, 2), 2, 0),      # non-overlapping windows (S = F)
        ((1, 2, 9, 9), (2, 2, 2, 2), 3, 1),      # gaps between windows (S > F)
    ],
)
def test_forward_backward_match_torch(x_shape, w_shape, S, P):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[0])
    ref = torch_conv(x, w, b, S, P)
    for conv in (conv2d_naive, *FORWARDS.values()):
        out = conv(x, w, b, stride=S, pad=P)
        assert out.shape == ref.shape, conv
        assert rel_error(out, ref) < TOL_TORCH, conv

    dout = rng.normal(size=ref.shape)
    _, dx_t, dw_t, db_t = torch_conv(x, w, b, S, P, dout)
    for conv_bwd in BACKWARDS.values():
        dx, dw, db = conv_bwd(dout, x, w, stride=S, pad=P)
        assert rel_error(dx, dx_t) < TOL_TORCH, conv_bwd
        assert rel_error(dw, dw_t) < TOL_TORCH, conv_bwd
        assert rel_error(db, db_t) < TOL_TORCH, conv_bwd


@backwards
@pytest.mark.parametrize("S, P", [(1, 1), (2, 0), (2, 1), (3, 1)])
def test_backward_matches_numerical_gradient(S, P, conv_bwd):
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 2, 7, 7)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    dout = rng.normal(size=conv2d(x, w, b, S, P).shape)
    dx, dw, db = conv_bwd(dout, x, w, S, P)
    assert rel_error(dx, numerical_gradient(lambda v: conv2d(v, w, b, S, P), x, dout)) < TOL_NUM
    assert rel_error(dw, numerical_gradient(lambda v: conv2d(x, v, b, S, P), w, dout)) < TOL_NUM
    assert rel_error(db, numerical_gradient(lambda v: conv2d(x, w, v, S, P), b, dout)) < TOL_NUM


@SWEEP
@given(conv_case())
def test_sweep_forward_matches_torch_and_naive(case):
    x, w, b, S, P, shape, _ = case
    ref = torch_conv(x, w, b, S, P)
    out = conv2d(x, w, b, S, P)
    assert out.shape == shape == ref.shape
    close(out, ref)
    close(conv2d_naive(x, w, b, S, P), out)
    for tuned in (fast.conv2d, fast_large, fast_chunked, fast_threaded):
        # tuned and readable agree
        close(tuned(x, w, b, S, P), out)


@SWEEP
@given(conv_case())
def test_sweep_backward_matches_autograd(case):
    x, w, b, S, P, shape, rng = case
    dout = rng.normal(size=shape)
    _, dx_t, dw_t, db_t = torch_conv(x, w, b, S, P, dout)
    dx, dw, db = conv2d_backward(dout, x, w, S, P)
    close(dx, dx_t)
    close(dw, dw_t)
    close(db, db_t)
    for tuned in (fast_backward_large, fast_backward_chunked, fast_backward_threaded):
        for got, readable in zip(tuned(dout, x, w, S, P), (dx, dw, db), strict=True):
            close(got, readable)


@settings(max_examples=12, deadline=None)
@given(conv_case(max_f=3))
def test_sweep_backward_matches_numerical_gradient(case):
    """Elementwise rel_error is fragile on random sweeps: a gradient entry that happens to be a
    near-zero sum (say 1e-5) against the ~1e-10 error of central differences reads as 1e-5.
    So: relative tolerance 1e-6 plus an absolute 1e-8 (h = 1e-5 truncation and rounding)."""
    x, w, b, S, P, shape, rng = case
    dout = rng.normal(size=shape)
    dx, dw, _ = conv2d_backward(dout, x, w, S, P)
    fdx, fdw, _ = fast_backward_large(dout, x, w, S, P)
    num_dx = numerical_gradient(lambda v: conv2d(v, w, b, S, P), x, dout)
    num_dw = numerical_gradient(lambda v: conv2d(x, v, b, S, P), w, dout)
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, num_dw, rtol=1e-6, atol=1e-8)
    close(fdx, dx)
    close(fdw, dw)


@SWEEP
@given(
    H=st.integers(1, 12), W=st.integers(1, 12), F=st.integers(1, 6),
    S=st.integers(1, 4), P=st.integers(0, 3),
)
def test_sweep_raises_exactly_when_the_filter_does_not_fit(H, W, F, S, P):
    """Any size: either the slides' formula gives whole numbers >= 1 and we match torch,
    or it does not and we raise ValueError quoting the numbers."""
    rng = np.random.default_rng(H * 1000 + W)
    x, w, b = rng.normal(size=(1, 2, H, W)), rng.normal(size=(2, 2, F, F)), rng.normal(size=2)
    fits = all(n + 2 * P >= F and (n + 2 * P - F) % S == 0 for n in (H, W))
    if fits:
        ref = torch_conv(x, w, b, S, P)
        for conv in FORWARDS.values():
            close(conv(x, w, b, S, P), ref)
        dout = np.ones((1, 2, (H + 2 * P - F) // S + 1, (W + 2 * P - F) // S + 1))
        for tuned in (fast_backward_large, fast_backward_chunked, fast_backward_threaded):
            close(tuned(dout, x, w, S, P)[0], conv2d_backward(dout, x, w, S, P)[0])
    else:
        for fn in (conv2d_naive, *FORWARDS.values()):
            with pytest.raises(ValueError, match=f"{F}x{F} filter"):
                fn(x, w, b, S, P)
        dout = np.ones((1, 2, 1, 1))
        for fn in BACKWARDS.values():
            with pytest.raises(ValueError, match=f"{F}x{F} filter"):
                fn(dout, x, w, S, P)


@forwards
@backwards
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, conv, conv_bwd):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 6, 6)).astype(dtype)
    w = rng.normal(size=(4, 3, 3, 3)).astype(dtype)
    b = rng.normal(size=4).astype(dtype)
    out = conv(x, w, b, 1, 1)
    assert out.dtype == dtype and conv2d_naive(x, w, b, 1, 1).dtype == dtype
    grads = conv_bwd(np.ones_like(out), x, w, 1, 1)
    assert [g.dtype for g in grads] == [dtype] * 3
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@forwards
def test_integer_input_is_computed_in_float64(conv):
    x = np.arange(16).reshape(1, 1, 4, 4)
    out = conv(x, np.ones((1, 1, 2, 2), dtype=int), np.zeros(1, dtype=int))
    assert out.dtype == np.float64
    assert out[0, 0, 0, 0] == 0 + 1 + 4 + 5


@pytest.mark.parametrize("conv", [conv2d_naive, *FORWARDS.values()])
def test_no_bias_is_pytorchs_bias_false(conv):
    """b=None: no bias added at all (not a zero-filled one that changes the dtype or shape)."""
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(2, 3, 7, 7)), rng.normal(size=(4, 3, 3, 3))
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w), None, stride=2, padding=1).numpy()
    out = conv(x, w, None, 2, 1)
    assert rel_error(out, ref) < TOL_TORCH
    assert conv(x.astype(np.float32), w.astype(np.float32), None).dtype == np.float32


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, S, P, match",
    [
        ((3, 7, 7), (2, 3, 3, 3), (2,), 1, 0, r"x must be 4-D \(N, C, H, W\), got 3-D"),
        ((1, 3, 7, 7), (3, 3, 3), (2,), 1, 0, r"w must be 4-D \(K, C, F, F\)"),
        ((1, 4, 7, 7), (2, 3, 3, 3), (2,), 1, 0, "channel mismatch: x has C = 4.*expect C = 3"),
        ((1, 3, 7, 7), (2, 3, 3, 3), (3,), 1, 0, r"b must have shape \(K,\) = \(2,\)"),
        ((1, 3, 7, 7), (2, 3, 3, 2), (2,), 1, 0, "filters must be square"),
        ((1, 3, 7, 7), (2, 3, 3, 3), (2,), 0, 0, "stride S must be a whole number >= 1, got 0"),
        ((1, 3, 7, 7), (2, 3, 3, 3), (2,), 1, -1, "pad P must be a whole number >= 0, got -1"),
        ((1, 3, 7, 7), (2, 3, 3, 3), (2,), 1.5, 0, "stride S must be a whole number >= 1, got 1.5"),
        ((1, 3, 3, 3), (2, 3, 5, 5), (2,), 1, 0, "5x5 filter is larger than a 3x3 input"),
        ((1, 3, 3, 3), (2, 3, 8, 8), (2,), 1, 2,
         r"larger than a 3x3 input padded by 2 \(3 \+ 2\*2 = 7\)"),
        ((1, 3, 7, 7), (2, 3, 3, 3), (2,), 3, 0,
         r"a 3x3 filter does not fit a 7x7 input with stride 3: \(7 - 3\) / 3 \+ 1 = 2.33"),
        ((1, 3, 7, 8), (2, 3, 3, 3), (2,), 2, 0,
         r"along the width W = 8: .*\(8 - 3\) / 2 \+ 1 = 3.5 "),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_rule(x_shape, w_shape, b_shape, S, P, match):
    x, w, b = np.ones(x_shape), np.ones(w_shape), np.ones(b_shape)
    for fn in (conv2d_naive, *FORWARDS.values()):
        with pytest.raises(ValueError, match=match):
            fn(x, w, b, S, P)


@backwards
def test_backward_rejects_a_dout_of_the_wrong_shape(conv_bwd):
    x, w = np.ones((2, 3, 7, 7)), np.ones((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 5, 5\)"):
        conv_bwd(np.ones((2, 4, 7, 7)), x, w)


def test_the_threaded_forward_follows_numpys_blas_thread_limit():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        assert fast.threads() == 1
    with threadpool_limits(2, user_api="blas"):
        assert fast.threads() == 2
    with mock.patch.object(fast, "THREADS", 5):
        assert fast.threads() == 5


def test_the_blas_handle_is_numpys_own_even_with_scipys_loaded_first():
    """SciPy ships an OpenBLAS of its own; threadpoolctl may list it first. Limiting that one
    would leave NumPy's products on all their threads."""
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS)
    fast._blas.cache_clear()
    try:
        assert "numpy" in fast._blas().filepath
    finally:
        fast._blas.cache_clear()


def test_blas_runs_on_one_thread_inside_the_shares_and_is_restored_after():
    """Our threads each call OpenBLAS: meanwhile it must run on one thread (two threads each
    asking for two would oversubscribe the cores), and afterwards on as many as before, also
    when a share raises."""
    from threadpoolctl import threadpool_limits
    blas = fast._blas()
    seen = []

    def share(x):
        seen.append((blas.get_num_threads(), fast.threads()))
        if x.shape[0] == 1:
            raise FloatingPointError("a share fails")
        return x.shape[0]

    with threadpool_limits(2, user_api="blas"), mock.patch.object(fast, "THREADS", None):
        assert fast._split_images(5, fast.THREADED_WORK, share, (np.ones((5, 1)),)) == [2, 3]
        assert seen == [(1, 2), (1, 2)]          # OpenBLAS on one; threads() still says two
        assert blas.get_num_threads() == 2
        with pytest.raises(FloatingPointError, match="a share fails"):
            fast._split_images(2, fast.THREADED_WORK, share, (np.ones((2, 1)),))
        assert blas.get_num_threads() == 2
        seen.clear()
        fast._split_images(5, fast.THREADED_WORK - 1, share, (np.ones((5, 1)),))
        assert seen == [(2, 2)]                  # too little work: one share, OpenBLAS as is


def test_without_threadpoolctl_one_thread_and_the_same_numbers(monkeypatch):
    """A grading sandbox may show cnnlab.nn but not threadpoolctl: importing and running the
    tuned layer must still work there (on one thread)."""
    import sys
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)     # `import threadpoolctl` fails
    fast._blas.cache_clear()
    try:
        assert fast.threads() == 1
        x = np.random.default_rng(9).normal(size=(3, 3, 6, 6))
        w = np.random.default_rng(10).normal(size=(2, 3, 3, 3))
        close(fast.conv2d(x, w, None, 1, 1), conv2d(x, w, None, 1, 1))
    finally:
        fast._blas.cache_clear()


def _threaded_in_child(queue):
    x = np.random.default_rng(0).normal(size=(4, 3, 6, 6))
    w = np.random.default_rng(1).normal(size=(2, 3, 3, 3))
    queue.put(float(np.abs(fast_threaded(x, w, None, 1, 1, threads=2)
                           - conv2d(x, w, None, 1, 1)).max()))


def test_a_forked_child_gets_threads_of_its_own():
    """A child forked after the parent used its thread pool has none of the pool's threads:
    submitting to the parent's one-worker pool there would wait forever."""
    import multiprocessing
    fast_threaded(np.ones((4, 3, 6, 6)), np.ones((2, 3, 3, 3)), None, 1, 1, threads=2)  # a pool
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_threaded_in_child, args=(queue,))
    child.start()
    child.join(timeout=20)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "the forked child's threaded conv2d never finished"
    assert queue.get(timeout=5) < 1e-12


def test_where_no_thread_can_start_the_caller_does_every_share():
    x = np.random.default_rng(0).normal(size=(5, 3, 6, 6))
    w = np.random.default_rng(1).normal(size=(2, 3, 3, 3))

    def no_threads(workers):
        raise RuntimeError("can't start new thread")

    with mock.patch.object(fast, "_executor", no_threads):
        close(fast_threaded(x, w, None, 1, 1), conv2d(x, w, None, 1, 1))


@forwards
def test_stride_1_and_no_padding_by_default(conv):
    x = np.random.default_rng(6).normal(size=(2, 3, 6, 6))
    w = np.random.default_rng(7).normal(size=(4, 3, 3, 3))
    np.testing.assert_array_equal(conv(x, w, None), conv(x, w, None, 1, 0))
    assert conv(x, w, None).shape == (2, 4, 4, 4)


def test_padding_wider_than_the_input_is_zeros_even_in_a_reused_buffer():
    """The padded copy lives in a reused scratch buffer: every border must be zeroed again, also
    when the pad is wider than the input (W < P)."""
    rng = np.random.default_rng(8)
    w = rng.normal(size=(2, 1, 3, 3))
    # leaves non-zero values where the next call's right border lies: the buffer is (1, 1, 11, 12)
    # now, then (1, 1, 5, 5), whose element 13 (row 2, column 3: the border) was x[0, 0, 0, 0]
    fast.conv2d(rng.normal(size=(1, 1, 9, 10)) + 5, w, None, 1, 1)
    x = rng.normal(size=(1, 1, 1, 1))
    close(fast.conv2d(x, w, None, 1, 2), conv2d(x, w, None, 1, 2))


@pytest.mark.parametrize(
    "C, K, F, P, flipped",
    [(4, 3, 3, 1, True), (3, 3, 3, 0, True), (3, 3, 3, 2, True), (2, 4, 3, 1, False),
     (3, 3, 3, 3, False), (3, 3, 1, 1, False)],
)
def test_stride_1_backward_by_flipped_filters_where_k_le_c(C, K, F, P, flipped):
    """With S = 1, K <= C and P <= F - 1 the tuned dx is a forward convolution of dout with the
    flipped filters; otherwise the column gradients are scattered back. Both match the
    readable backward."""
    rng = np.random.default_rng(11)
    x, w = rng.normal(size=(3, C, 6, 7)), rng.normal(size=(K, C, F, F))
    dout = rng.normal(size=conv2d(x, w, None, 1, P).shape)
    with mock.patch.object(fast, "_forward_share", wraps=fast._forward_share) as forward:
        got = fast_backward_large(dout, x, w, 1, P)
    assert forward.called == flipped
    for g, r in zip(got, conv2d_backward(dout, x, w, 1, P), strict=True):
        close(g, r)


@pytest.mark.parametrize(
    "N, rows, L", [(32, 576, 1024), (100, 28, 256), (5, 10**6, 10**3), (1, 1, 1)]
)
def test_images_per_chunk_is_a_whole_number_that_fits_the_chunk(N, rows, L):
    """The loops step by it: a float (CHUNK / ...) would stop range() on the large layers only,
    which the small test layers never reach."""
    n = fast._per_chunk(N, rows, L)
    assert type(n) is int and 1 <= n <= N
    assert n == 1 or n * rows * L <= fast.CHUNK < (n + 1) * rows * L or n == N


def test_the_padded_buffers_kept_per_thread_are_bounded_and_reused_safely():
    """Each thread keeps at most PADDED_KEPT padded buffers, the least recently used leaving
    first; a kept buffer's borders stay zero while its interior takes each new input."""
    rng = np.random.default_rng(12)
    w = rng.normal(size=(2, 1, 3, 3))
    for size in range(5, 5 + fast.PADDED_KEPT + 2):           # more shapes than are kept
        x = rng.normal(size=(1, 1, size, size)) + 100
        close(fast_large(x, w, None, 1, 1), conv2d(x, w, None, 1, 1))
    kept = fast._kept.buffers
    assert len(kept) == fast.PADDED_KEPT
    assert [key[0][2] for key in kept] == list(range(7, 7 + fast.PADDED_KEPT))  # the newest
    x = rng.normal(size=(1, 1, 10, 10))                        # a kept shape, new values
    close(fast_large(x, w, None, 1, 1), conv2d(x, w, None, 1, 1))
    assert next(reversed(kept))[0] == (1, 1, 10, 10)           # now the most recent
    first = fast._padded_windows(x, 3, 1, 1, 10, 10)
    again = fast._padded_windows(x + 1, 3, 1, 1, 10, 10)
    assert np.shares_memory(first, again)                      # the same buffer, not a new one
    np.testing.assert_array_equal(again[0, 0, 1, 1], x[0, 0] + 1)
