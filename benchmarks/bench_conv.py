"""Speed of cnnlab's NumPy convolution and max pooling against PyTorch's CPU kernels.

    .venv/bin/python benchmarks/bench_conv.py              # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_conv.py --threads 1 --cpu-time  # steady on a busy machine

Prints a Markdown table: for each of issue 2's shapes, the best-of-R wall time of our forward and
backward and PyTorch's (forward under no_grad; backward = autograd's backward alone, on a retained
graph), the ratio ours/torch (target: forward <= 1.5, backward <= 2), and the speed-up of
``conv2d`` over ``conv2d_naive`` on one image. Both libraries run in this process with the same
number of threads: torch.set_num_threads(the number of threads of NumPy's BLAS, via threadpoolctl).
Timings alternate between the two libraries in every round, so load from other processes hits
both alike. float32, the dtype PyTorch trains in. Every result is checked against torch first.
The fwd+bwd column compares the sum: PyTorch's pooling backward reuses the indices its forward
saved, while ``max_pool2d_backward(dout, x)`` finds the maxima again from x.

On a loaded machine multi-threaded GEMMs stall whenever one of their threads is descheduled, so
two-thread timings swing by 10x from run to run; ``--threads 1 --cpu-time`` is far steadier.
"""

from __future__ import annotations

import argparse
import os
import time

# Both libraries share this process and its 2 cores. By default PyTorch's OpenMP workers keep
# spinning after each op, taking the cores from OpenBLAS's threads in NumPy's next call: measured
# here, our first layer's forward went from 2.4 ms to 10-14 ms that way. Idle threads sleep instead
# (set before torch is imported; an explicit OMP_WAIT_POLICY in the environment wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as TF
from threadpoolctl import threadpool_info, threadpool_limits

from cnnlab.nn import conv2d, conv2d_backward, conv2d_naive, max_pool2d, max_pool2d_backward

# (x shape (N, C, H, W), w shape (K, C, F, F), stride S, pad P), as listed in issue 2.
# The AlexNet-like layer has a 224x224 input: (224 + 2*2 - 11) / 4 + 1 = 55.25 does not fit.
# PyTorch floors that to 55 and silently skips the last padded row and column; cnnlab raises (the
# slides' rule). Both run on 223x223, which gives the same 55x55x64 output and the same FLOPs.
CONV_SHAPES = [
    ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
    ((64, 3, 32, 32), (32, 3, 3, 3), 1, 1),
    ((32, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ((16, 3, 223, 223), (64, 3, 11, 11), 4, 2),
]
POOL_SHAPE = (64, 32, 32, 32)  # max pooling 2x2, stride 2


def blas_threads() -> int:
    """Threads of NumPy's BLAS (OpenBLAS here), as threadpoolctl reports them now."""
    for pool in threadpool_info():
        if pool["user_api"] == "blas" and "numpy" in pool["filepath"]:
            return int(pool["num_threads"])
    return max(int(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas")


CLOCK = time.perf_counter  # --cpu-time: time.process_time


def best_times(fns: dict, repeats: int, budget_s: float = 3.0, max_rounds: int = 60) -> dict:
    """Best wall time of each function, the functions taking turns in every round.

    At least ``repeats`` rounds, more (up to ``max_rounds``) while the rounds fit in ``budget_s``:
    on a shared machine the minimum over more rounds is closer to the undisturbed time.
    """
    t0 = time.perf_counter()
    for f in fns.values():  # warm-up: allocations, thread pools, oneDNN kernels
        f()
    round_s = time.perf_counter() - t0
    rounds = min(max_rounds, max(repeats, int(budget_s / max(round_s, 1e-9))))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, f in fns.items():
            t0 = CLOCK()
            f()
            best[name] = min(best[name], CLOCK() - t0)
    return best


def check(ours, ref, what: str) -> None:
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else ref
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(ours - ref).max()) / scale
    if err > 1e-4:
        raise SystemExit(f"{what}: ours differs from torch by {err:.2e} (relative to max |ref|)")


def bench_conv(x_shape, w_shape, S, P, repeats, rng):
    x = rng.normal(size=x_shape).astype(np.float32)
    w = (rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    b = rng.normal(size=w_shape[0]).astype(np.float32)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = TF.conv2d(xt, wt, bt, stride=S, padding=P)
    dout_t = torch.randn_like(out_t)
    dout = dout_t.numpy()

    check(conv2d(x, w, b, S, P), out_t, "conv2d")
    grads_t = torch.autograd.grad(out_t, (xt, wt, bt), dout_t, retain_graph=True)
    ours = conv2d_backward(dout, x, w, S, P)
    for g, gt, name in zip(ours, grads_t, ("dx", "dw", "db"), strict=True):
        check(g, gt, f"conv2d_backward {name}")

    xd, wd, bd = (a.detach() for a in (xt, wt, bt))

    def torch_fwd():
        with torch.no_grad():
            TF.conv2d(xd, wd, bd, stride=S, padding=P)

    t = best_times(
        {
            "ours_fwd": lambda: conv2d(x, w, b, S, P),
            "torch_fwd": torch_fwd,
            "ours_bwd": lambda: conv2d_backward(dout, x, w, S, P),
            "torch_bwd": lambda: torch.autograd.grad(out_t, (xt, wt, bt), dout_t,
                                                     retain_graph=True),
        },
        repeats,
    )
    # naive loops: one image, timed once (it is slow), against conv2d on the same image
    x1 = x[:1]
    t0 = CLOCK()
    naive = conv2d_naive(x1, w, b, S, P)
    t_naive = CLOCK() - t0
    check(naive, conv2d(x1, w, b, S, P), "conv2d_naive")
    t_fast1 = best_times({"fast": lambda: conv2d(x1, w, b, S, P)}, repeats)["fast"]
    return t, t_naive / t_fast1


def bench_pool(shape, repeats, rng):
    x = rng.normal(size=shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    out_t = TF.max_pool2d(xt, 2, 2)
    dout_t = torch.randn_like(out_t)
    dout = dout_t.numpy()
    check(max_pool2d(x, 2, 2), out_t, "max_pool2d")
    (dx_t,) = torch.autograd.grad(out_t, (xt,), dout_t, retain_graph=True)
    check(max_pool2d_backward(dout, x, 2, 2), dx_t, "max_pool2d_backward")
    xd = xt.detach()

    def torch_fwd():
        with torch.no_grad():
            TF.max_pool2d(xd, 2, 2)

    return best_times(
        {
            "ours_fwd": lambda: max_pool2d(x, 2, 2),
            "torch_fwd": torch_fwd,
            "ours_bwd": lambda: max_pool2d_backward(dout, x, 2, 2),
            "torch_bwd": lambda: torch.autograd.grad(out_t, (xt,), dout_t, retain_graph=True),
        },
        repeats,
    )


def row(name, t, speedup=None) -> str:
    ms = {k: v * 1e3 for k, v in t.items()}
    rf, rb = t["ours_fwd"] / t["torch_fwd"], t["ours_bwd"] / t["torch_bwd"]
    rs = (t["ours_fwd"] + t["ours_bwd"]) / (t["torch_fwd"] + t["torch_bwd"])
    ok = "yes" if rf <= 1.5 and rb <= 2.0 else "**no**"
    su = f"{speedup:,.0f}x" if speedup else "-"
    return (
        f"| {name} | {ms['ours_fwd']:.1f} | {ms['torch_fwd']:.1f} | {rf:.2f} | {ms['ours_bwd']:.1f}"
        f" | {ms['torch_bwd']:.1f} | {rb:.2f} | {rs:.2f} | {ok} | {su} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7,
                        help="at least this many timed rounds per shape (best kept)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: NumPy's BLAS threads)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time CPU seconds of this process instead of wall time: with"
                        " --threads 1, time spent descheduled by other processes does not count")
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.threads is not None:
        threadpool_limits(limits=args.threads, user_api="blas")
    threads = blas_threads()
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__} (BLAS threads: {threads}), torch {torch.__version__}"
          f" (threads: {torch.get_num_threads()}), float32, best of >= {args.repeats} rounds,"
          f" {'CPU' if args.cpu_time else 'wall'} time\n")
    print("| shape | fwd ours ms | fwd torch ms | fwd ratio | bwd ours ms | bwd torch ms"
          " | bwd ratio | fwd+bwd ratio | on target | conv2d vs naive |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|:-:|---:|")
    for x_shape, w_shape, S, P in CONV_SHAPES:
        t, speedup = bench_conv(x_shape, w_shape, S, P, args.repeats, rng)
        name = f"conv x {x_shape} w {w_shape} S{S} P{P}".replace(" (", "(")
        print(row(name, t, speedup), flush=True)
    t = bench_pool(POOL_SHAPE, args.repeats, rng)
    print(row(f"max pool 2x2 S2 x {POOL_SHAPE}", t), flush=True)


if __name__ == "__main__":
    main()
