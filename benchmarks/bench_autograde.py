"""Autograde N generated submissions with plain nbgrader (sequential), with the previous kernel
runner and with the sandboxed runner (``cnnlab autograde --jobs J``); print wall and CPU seconds
per notebook, the speed-ups and the grading overhead per notebook.

    .venv/bin/python benchmarks/bench_autograde.py --assignment 02_convolution   # 50 students
    .venv/bin/python benchmarks/bench_autograde.py --assignment 08_architectures --students 20
    .venv/bin/python benchmarks/bench_autograde.py --no-old      # toy assignment, new runner only

Each contender grades the same submissions (correct, partial and blank in turn, generated from the
instructor notebook by ``cnnlab.instructor.demo``) in a fresh scratch copy of the course, so all
start from an identical gradebook. The previous runner (nbgrader's Execute in a jupyter kernel
with in-process guards, replaced by the sandboxed one) is taken from git (``--old-rev``, default
the commit before the change) into a temporary folder and run from there; its kernels get the
PYTHONPATH that points at it, nothing else changes. ``--jobs 1`` of the new runner is also timed
(skip with ``--no-sequential``): (new --jobs 1 - plain nbgrader) / N is the sandboxed runner's own
cost per notebook (sandbox start, imports, the protocol, gradebook writes), target <= 0.5 s;
new --jobs 2 against new --jobs 1, target >= 1.8x on 2 cores. ``uptime`` is printed before and
after: on a shared machine, compare runs made under similar load.
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

from cnnlab.instructor import demo, release
from cnnlab.instructor.course import Course, find_course_root

REPO = Path(__file__).resolve().parents[1]
OLD_REV = "bc04501"  # the last commit with the kernel runner (execute.py, sandbox_kernel.py)


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
    """The sandboxed runner, in a fresh process as ``cnnlab autograde`` runs (its forkserver and
    warm sandboxes start inside the time): (wall seconds, CPU seconds of that process and its
    waited-for children plus what each worker measured for its submissions, since the workers
    are the forkserver's children)."""
    code = ("import json; from cnnlab.instructor import autograde; "
            "from cnnlab.instructor.course import Course; "
            f"state = autograde.autograde(Course.load({str(course.root)!r}), {assignment!r}, "
            f"jobs={jobs}, log=lambda *a: None, limits=autograde.Limits(timeout={timeout})); "
            "print(json.dumps(sum(s.get('cpu_seconds', 0.0) for s in state.values())))")
    cpu = cpu_seconds()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"the sandboxed runner failed:\n{r.stderr[-3000:]}")
    workers = float(r.stdout.strip().splitlines()[-1])
    return dt, cpu_seconds() - cpu + workers


def old_tree(rev: str, dest: Path) -> Path:
    """The previous runner's ``cnnlab`` package from git, its kernels told where it lives."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "cnnlab"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    execute = dest / "cnnlab" / "instructor" / "execute.py"
    text = execute.read_text()
    execute.write_text(text.replace('"TQDM_DISABLE")', '"TQDM_DISABLE", "PYTHONPATH")'))
    return dest


def time_old(course: Course, assignment: str, jobs: int, timeout: int, tree: Path):
    """The previous kernel runner, in a process of its own that imports it from ``tree``."""
    code = ("import sys; from cnnlab.instructor import autograde; "
            "from cnnlab.instructor.course import Course; "
            f"autograde.autograde(Course.load({str(course.root)!r}), {assignment!r}, "
            f"jobs={jobs}, log=lambda *a: None, limits=autograde.Limits(timeout={timeout}))")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cpu = cpu_seconds()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"the previous runner failed:\n{r.stderr[-3000:]}")
    return dt, cpu_seconds() - cpu


def scores(course: Course, assignment: str, n: int) -> str:
    """Mean score per kind of submission, from the gradebook; exits when a correct submission
    lost points (a contender that fails fast is no faster)."""
    from nbgrader.api import Gradebook

    got: dict[str, list[float]] = {k: [] for k in demo.KINDS}
    top = 0.0
    with Gradebook(course.db_url, course.course_id) as gb:
        for i in range(n):
            try:
                sub = gb.find_submission(assignment, f"s{i:03d}")
            except Exception:  # noqa: BLE001 (not graded at all)
                sys.exit(f"s{i:03d} was not graded")
            got[demo.KINDS[i % 3]].append(sub.score)
            top = sub.max_score
    if min(got["correct"]) < top:
        sys.exit(f"a correct submission lost points: {got['correct']}")
    return ", ".join(f"{k} {sum(v) / len(v):.2f}" for k, v in got.items() if v) + f" of {top:g}"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="toy")
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=int, default=120)
    p.add_argument("--no-sequential", action="store_true", help="skip cnnlab --jobs 1")
    p.add_argument("--no-old", action="store_true", help="skip the previous kernel runner")
    p.add_argument("--old-rev", default=OLD_REV)
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    n, j = a.students, a.jobs
    print(f"{n} submissions of {a.assignment}, {os.cpu_count()} CPUs; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; uptime: {uptime()}")

    def line(label, wall, cpu):
        print(f"{label:38s} {wall:7.1f} s  ({wall / n:.2f} s/notebook wall, "
              f"{cpu / n:.2f} s/notebook CPU)")

    try:
        course = make_course(base / "plain", a.assignment, n)
        plain, plain_cpu = time_plain(course, a.assignment, a.timeout)
        line("plain nbgrader autograde (sequential)", plain, plain_cpu)
        print(f"    mean scores: {scores(course, a.assignment, n)}")
        if not a.no_old:
            tree = old_tree(a.old_rev, base / "old")
            course = make_course(base / "old-course", a.assignment, n)
            old, old_cpu = time_old(course, a.assignment, j, a.timeout, tree)
            line(f"previous kernel runner --jobs {j}", old, old_cpu)
            print(f"    mean scores: {scores(course, a.assignment, n)}")
        course = make_course(base / "new", a.assignment, n)
        new, new_cpu = time_cnnlab(course, a.assignment, j, a.timeout)
        line(f"sandboxed runner --jobs {j}", new, new_cpu)
        print(f"    mean scores: {scores(course, a.assignment, n)}")
        print(f"sandboxed --jobs {j} vs plain nbgrader: {plain / new:.2f}x"
              + (f"; vs the previous runner: {old / new:.2f}x" if not a.no_old else ""))
        if not a.no_sequential:
            course = make_course(base / "seq", a.assignment, n)
            seq, seq_cpu = time_cnnlab(course, a.assignment, 1, a.timeout)
            line("sandboxed runner --jobs 1", seq, seq_cpu)
            print(f"    mean scores: {scores(course, a.assignment, n)}")
            print(f"--jobs {j} / --jobs 1: {seq / new:.2f}x (target >= 1.8x on 2 cores)")
            # each command pays a fixed start (interpreter, forkserver importing the grader and
            # torch, each worker's warm sandbox): time it on 2 submissions, and compare what the
            # other N - 2 cost on top
            k = 2
            start1, _ = time_cnnlab(make_course(base / "start1", a.assignment, k), a.assignment,
                                    1, a.timeout)
            startj, _ = time_cnnlab(make_course(base / "startj", a.assignment, k), a.assignment,
                                    j, a.timeout)
            m1, mj = (seq - start1) / (n - k), (new - startj) / (n - k)
            print(f"fixed start ({k} submissions): --jobs 1 {start1:.1f} s, --jobs {j} "
                  f"{startj:.1f} s; each further notebook: --jobs 1 {m1:.3f} s, --jobs {j} "
                  f"{mj:.3f} s, {m1 / mj if mj > 0 else float('nan'):.2f}x")
            print(f"grading overhead per notebook (sandboxed --jobs 1 - plain nbgrader): wall "
                  f"{(seq - plain) / n:+.2f} s, CPU {(seq_cpu - plain_cpu) / n:+.2f} s "
                  "(target <= 0.5 s)")
        print(f"uptime after: {uptime()}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
