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

With ``--warm`` (grading as root) it also times ``Policy(warm=True)``: each run forked from a
zygote that imported numpy and torch once, into namespaces, scratch and uid of its own (the
zygote's own start, which pays torch's import, is printed apart).
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


def sandboxed(argv: list[str], policy: sb.Policy = POLICY) -> float:
    t = time.perf_counter()
    with sb.start(argv, policy) as box:
        code = box.wait(120)
    if code != 0:
        raise RuntimeError(f"{argv} failed in the sandbox (exit {code}): {box.output()!r}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warm", action="store_true", help="also the warm start (as root)")
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

    warm = sb.Policy(importable=POLICY.importable, warm=True)
    kinds = ("cold", "warm") if args.warm else ("cold",)
    if args.warm:
        t = time.perf_counter()
        sandboxed(["/bin/true"], warm)
        print(f"one-off per worker: the warm zygote's start: {time.perf_counter() - t:.2f} s\n")
    print("wall seconds: median and best; extra and ratio: medians against plain")
    print(
        f"{'command':<16} {'plain':>6} {'best':>6}"
        + "".join(f" {k:>6} {'best':>6} {'extra':>6} {'ratio':>6}" for k in kinds)
    )
    for name, argv in COMMANDS.items():
        runs = {"plain": [], "cold": [], "warm": []}
        plain(argv), sandboxed(argv)  # warm the page cache
        for _ in range(args.rounds):
            runs["plain"].append(plain(argv))
            for kind in kinds:
                runs[kind].append(sandboxed(argv, warm if kind == "warm" else POLICY))
        pm = statistics.median(runs["plain"])
        line = f"{name:<16} {pm:>6.3f} {min(runs['plain']):>6.3f}"
        for kind in kinds:
            m = statistics.median(runs[kind])
            line += f" {m:>6.3f} {min(runs[kind]):>6.3f} {m - pm:>6.3f} {m / pm:>6.2f}"
        print(line)


if __name__ == "__main__":
    main()
