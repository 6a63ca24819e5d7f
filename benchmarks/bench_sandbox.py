"""What one sandbox costs: start + a Python command inside, against the same without bubblewrap.

    .venv/bin/python benchmarks/bench_sandbox.py              # 10 rounds each: about 1-2 min
    .venv/bin/python benchmarks/bench_sandbox.py --rounds 30

For each command (``/bin/true``; ``python -c pass``; ``import numpy``; ``import torch``) it times,
taking turns in every round, a plain subprocess of the grader's interpreter and the same command
in a fresh sandbox (``cnnlab.instructor.runner.sandbox.start`` ... ``wait``), and prints the median
and best wall seconds of each, the sandbox's extra time and the ratio. The first sandbox of a
worker also builds the site-packages view of its policy (metadata of every installed
distribution); that one-off cost is printed apart. Issue 9's budget is 0.5 s of grading overhead
per notebook. The load average and the OpenBLAS settings it ran under are printed: on a shared
machine, compare runs made under similar load.

``--warm-fork`` (as root) also measures an experiment, not what ``sandbox.start`` does: one
sandbox that keeps root's capabilities imports torch once, then for each "submission" forks a
child that enters fresh mount, PID, network, IPC and UTS namespaces, mounts its own scratch tmpfs
and /proc, drops to a fresh uid and runs one ``nn.Linear``: the cost a pre-imported "zygote" per
worker would pay per submission instead of importing torch again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from cnnlab.instructor.runner import _view
from cnnlab.instructor.runner import sandbox as sb

COMMANDS = {
    "/bin/true": ["/bin/true"],
    "python -c pass": ["python", "-c", "pass"],
    "import numpy": ["python", "-c", "import numpy"],
    "import torch": ["python", "-c", "import torch, torch.nn"],
}
POLICY = sb.Policy(importable=("numpy", "torch"))


def plain(argv: list[str]) -> float:
    argv = [sys.executable, *argv[1:]] if argv[0] == "python" else argv
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t


def sandboxed(argv: list[str]) -> float:
    t = time.perf_counter()
    with sb.start(argv, POLICY) as box:
        code = box.wait(120)
    if code != 0:
        raise RuntimeError(f"{argv} failed in the sandbox (exit {code}): {box.output()!r}")
    return time.perf_counter() - t


WARM_FORK = r"""
import ctypes, os, sys, time
t = time.perf_counter()
import torch, torch.nn
print(f"zygote: import torch once {time.perf_counter() - t:.2f} s", flush=True)
libc = ctypes.CDLL(None, use_errno=True)
NEWNS, NEWPID, NEWNET, NEWIPC, NEWUTS = 0x20000, 0x20000000, 0x40000000, 0x8000000, 0x4000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 0x4000, 1 << 18


def ok(result):
    if result != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


times = []
for i in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    r, w = os.pipe()
    if os.fork() == 0:
        ok(libc.unshare(NEWNS | NEWPID | NEWNET | NEWIPC | NEWUTS))
        if os.fork() == 0:  # pid 1 of its own PID namespace
            ok(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None))
            ok(libc.mount(b"tmpfs", b"/scratch", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m"))
            ok(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV, None))
            uid = 2**30 + i
            os.setgroups([]), os.setresgid(uid, uid, uid), os.setresuid(uid, uid, uid)
            shape = tuple(torch.nn.Linear(2, 3)(torch.ones(1, 2)).shape)
            os.write(w, f"pid {os.getpid()} uid {os.getuid()} {shape}".encode())
            os._exit(0)
        os.wait()
        os._exit(0)
    os.close(w)
    said = os.read(r, 100).decode()
    os.close(r)
    os.wait()
    times.append(time.perf_counter() - t0)
times.sort()
print(f"child says: {said}")
print(f"per submission: median {times[len(times) // 2]:.3f} s, best {times[0]:.3f} s")
"""


def warm_fork(rounds: int) -> None:
    """The zygote experiment (see the module docstring): root's sandbox without setpriv."""
    channel, ch_in, ch_out = sb._pipes()
    info_r, info_w = os.pipe()
    args = sb._bwrap_argv(
        ["python", "-c", WARM_FORK, str(rounds)], POLICY, {}, ch_in, ch_out, info_w, as_root=True
    )
    argv = args.argv
    start = argv.index("setpriv")
    argv = argv[:start] + argv[argv.index("--", start) + 1 :]  # keep root inside
    argv = [
        a
        for a in argv
        if a not in ("--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
    ]
    subprocess.run(argv, check=True, pass_fds=(ch_in, ch_out, info_w, *args.fds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warm-fork", action="store_true", help="also the zygote experiment (root)")
    args = ap.parse_args()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(
        "OPENBLAS_CORETYPE =",
        os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        " OPENBLAS_L2_SIZE =",
        os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
    )
    print(
        "grading as root:",
        os.geteuid() == 0,
        " bubblewrap:",
        subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip(),
    )

    t = time.perf_counter()
    sb.check_available(POLICY)
    view = _view.site_view(POLICY.importable)
    print(
        f"\none-off per worker: probe + site-packages view of {POLICY.importable} "
        f"({len(view.distributions)} distributions, {len(view.binds)} binds): "
        f"{time.perf_counter() - t:.2f} s\n"
    )

    print(
        f"{'command':<16} {'plain median':>12} {'best':>6} {'sandbox median':>15} {'best':>6} "
        f"{'extra (median)':>15} {'ratio':>6}"
    )
    for name, argv in COMMANDS.items():
        p, s = [], []
        plain(argv), sandboxed(argv)  # warm the page cache
        for _ in range(args.rounds):
            p.append(plain(argv))
            s.append(sandboxed(argv))
        pm, sm = statistics.median(p), statistics.median(s)
        print(
            f"{name:<16} {pm:>12.3f} {min(p):>6.3f} {sm:>15.3f} {min(s):>6.3f} "
            f"{sm - pm:>15.3f} {sm / pm:>6.2f}"
        )
    if args.warm_fork:
        print("\nexperiment: a pre-imported zygote forking fresh namespaces per submission")
        warm_fork(max(args.rounds, 5))


if __name__ == "__main__":
    main()
