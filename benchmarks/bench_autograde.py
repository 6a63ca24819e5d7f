"""Autograde N generated submissions with plain nbgrader (sequential) and with
``cnnlab autograde --jobs J``; print both wall times, the speed-up and the per-notebook overhead.

    .venv/bin/python benchmarks/bench_autograde.py                   # toy assignment, 50 students
    .venv/bin/python benchmarks/bench_autograde.py --assignment 01_fc_vs_conv --students 20

Each contender grades the same submissions (correct, partial and blank in turn, generated from the
instructor notebook by ``cnnlab.instructor.demo``) in a fresh scratch copy of the course, so both
start from an identical gradebook. ``--jobs 1`` is also timed (skip with ``--no-sequential``):
(cnnlab --jobs 1 - plain nbgrader) / N is cnnlab's own overhead per notebook (worker hand-off,
private gradebook copy, sandboxed kernel start, scan, merge). The target on 2 cores is a speed-up
of at least 1.8x for --jobs 2. The load average is printed: on a shared machine, compare runs made
under similar load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from cnnlab.instructor import autograde, demo, release
from cnnlab.instructor.course import Course, find_course_root

REPO = Path(__file__).resolve().parents[1]


def make_course(workdir: Path, assignment: str, n: int) -> Course:
    workdir.mkdir(parents=True, exist_ok=True)
    if assignment == "toy":
        demo.toy_course(workdir)
    else:
        real = Course.load(find_course_root(REPO))
        real.check_assignment(assignment)
        shutil.copy(real.root / "nbgrader_config.py", workdir / "nbgrader_config.py")
        shutil.copytree(real.source / assignment, workdir / "solutions" / assignment)
    course = Course.load(workdir)
    release.release(course, [assignment], log=lambda *a: None)
    for i in range(n):
        kind = demo.KINDS[i % 3]
        student = f"s{i:03d}"
        for name in course.notebooks(assignment):
            src = nbformat.read(str(course.source / assignment / f"{name}.ipynb"), 4)
            rel = nbformat.read(str(course.release / assignment / f"{name}.ipynb"), 4)
            dest = course.submitted / student / assignment
            dest.mkdir(parents=True, exist_ok=True)
            nbformat.write(demo.sample_submission(src, rel, kind), str(dest / f"{name}.ipynb"))
    return course


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished, waited-for descendants
    (nbgrader, workers, kernels)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def time_plain(course: Course, assignment: str, timeout: int) -> tuple[float, float]:
    """``nbgrader autograde ASSIGNMENT`` (all students, one after another, one process):
    (wall seconds, CPU seconds)."""
    nbgrader = Path(sys.executable).parent / "nbgrader"
    cpu = cpu_seconds()
    t = time.perf_counter()
    r = subprocess.run([str(nbgrader), "autograde", assignment, "--force",
                        f"--Execute.timeout={timeout}"],
                       cwd=course.root, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"plain nbgrader failed:\n{r.stderr[-3000:]}")
    return dt, cpu_seconds() - cpu


def time_cnnlab(course: Course, assignment: str, jobs: int, timeout: int) -> tuple[float, float]:
    cpu = cpu_seconds()
    t = time.perf_counter()
    autograde.autograde(course, assignment, jobs=jobs, log=lambda *a: None,
                        limits=autograde.Limits(timeout=timeout))
    return time.perf_counter() - t, cpu_seconds() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="toy")
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=int, default=120)
    p.add_argument("--no-sequential", action="store_true", help="skip cnnlab --jobs 1")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    n = a.students
    print(f"{n} submissions of {a.assignment}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    try:
        plain, plain_cpu = time_plain(make_course(base / "plain", a.assignment, n), a.assignment,
                                      a.timeout)
        print(f"plain nbgrader autograde (sequential): {plain:7.1f} s  "
              f"({plain / n:.2f} s/notebook, CPU {plain_cpu / n:.2f} s/notebook)")
        par, par_cpu = time_cnnlab(make_course(base / "par", a.assignment, n), a.assignment,
                                   a.jobs, a.timeout)
        print(f"cnnlab autograde --jobs {a.jobs}:          {par:7.1f} s  "
              f"({par / n:.2f} s/notebook, CPU {par_cpu / n:.2f} s/notebook)")
        print(f"speed-up: {plain / par:.2f}x (target >= 1.8x on 2 cores)")
        # on an idle machine with `jobs` free cores the wall time is about CPU / jobs
        print(f"speed-up from CPU time (idle machine, {a.jobs} free cores): "
              f"{plain_cpu / (par_cpu / a.jobs):.2f}x")
        if not a.no_sequential:
            seq, seq_cpu = time_cnnlab(make_course(base / "seq", a.assignment, n), a.assignment,
                                       1, a.timeout)
            print(f"cnnlab autograde --jobs 1:          {seq:7.1f} s  "
                  f"({seq / n:.2f} s/notebook, CPU {seq_cpu / n:.2f} s/notebook)")
            print(f"cnnlab overhead per notebook (jobs 1 - plain): wall {(seq - plain) / n:+.2f} s,"
                  f" CPU {(seq_cpu - plain_cpu) / n:+.2f} s")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
