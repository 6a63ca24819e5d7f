"""Autograde N generated submissions with the local pool (``--jobs 2``) and through a Dask
scheduler with two single-threaded workers on this machine; print both wall times, the cluster
path's overhead per submission and the projected time for a whole course on W two-core workers.

    .venv/bin/python benchmarks/bench_cluster.py                          # 50 x 02_convolution
    .venv/bin/python benchmarks/bench_cluster.py --assignment toy --students 10 --no-projection

Both contenders grade the same submissions (correct, partial and blank in turn) in fresh scratch
copies of the course (``bench_autograde.make_course``), with the same trusted unit
(``runner.grade.grade_submission``). The cluster is real: ``dask scheduler`` and two
``dask worker --nthreads 1`` processes (started as the tests start them); the gradebook is sqlite
in both runs so that only the executor differs.

Overhead per submission (target < 0.2 s) is counted two ways:
* batch: wall x workers / N - the unit's mean run time on the worker (what each worker slot spends
  not grading: packing, transfer, scheduling, the parent's gradebook writes it waits for);
* round trip: N tasks that carry the same job bytes to a unit that returns at once.
The projection (target <= 20 min for 300 students x 9 assignments on 3 workers) grades one
correct submission of every assignment on the cluster, and counts a student as the sum of their
times plus the overhead: once from wall time (a worker core as loaded as this machine's), once
from CPU time (an idle core per worker process). ``uptime`` is printed before and after: on a shared
machine compare runs made under similar load. OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as found.
"""

from __future__ import annotations

import argparse
import operator
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_autograde import make_course  # noqa: E402
from daskproc import start_cluster  # noqa: E402

from cnnlab.instructor import autograde, cluster_grade  # noqa: E402
from cnnlab.instructor.cluster import DaskExecutor  # noqa: E402
from cnnlab.instructor.course import Course, find_course_root  # noqa: E402

PRELOAD = ["cnnlab.instructor.runner.grade"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed_autograde(course: Course, assignment: str, timeout: int, **how) -> tuple[float, dict]:
    t = time.perf_counter()
    state = autograde.autograde(course, assignment, log=lambda *a: None,
                                limits=autograde.Limits(timeout=timeout), **how)
    wall = time.perf_counter() - t
    bad = {s: r["flags"][-1:] for s, r in state.items() if r["status"] != "graded"}
    if bad:
        sys.exit(f"not every submission was graded: {bad}")
    return wall, state


def round_trip(address: str, course: Course, assignment: str, timeout: int) -> float:
    """Seconds per task for N tasks carrying the real jobs to a unit that returns at once."""
    settings = autograde.settings_for(course, assignment, autograde.Limits(timeout=timeout))
    students = autograde.submitted_students(course, assignment)
    with DaskExecutor(address=address) as ex:
        t = time.perf_counter()
        for job in autograde.jobs_for(course, assignment, students, settings):
            ex.submit(operator.attrgetter("student"), job, key=job.student)
        outs = list(ex.as_completed())
        wall = time.perf_counter() - t
    assert all(o.ok for o in outs), [o.error for o in outs if not o.ok]
    return wall * 2 / len(students)  # two workers share the tasks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="02_convolution")
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--timeout", type=int, default=180)
    p.add_argument("--no-projection", action="store_true",
                   help="skip grading one submission of every assignment for the projection")
    p.add_argument("--projection-only", action="store_true",
                   help="only the projection (the overhead per submission counted as 0)")
    a = p.parse_args()
    n, workers = a.students, 2
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    print(f"{n} submissions of {a.assignment}, {os.cpu_count()} CPUs, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, OPENBLAS_L2_SIZE="
          f"{os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")
    print(f"uptime before: {uptime()}")
    dask = None
    try:
        overhead, local_wall = 0.0, None
        if not a.projection_only:  # the local pool first, while no Dask process runs
            local_wall, _ = timed_autograde(make_course(base / "local", a.assignment, n),
                                            a.assignment, a.timeout, jobs=2)
            print(f"local --jobs 2:                      {local_wall:7.1f} s  "
                  f"({local_wall / n:.2f} s/submission)")
        dask = start_cluster(workers)
        with DaskExecutor(address=dask.address) as ex:  # long-lived workers are warm
            print(f"warming the fresh workers (imports): {ex.preload(PRELOAD):.1f} s")
        if local_wall is not None:
            course = make_course(base / "cluster", a.assignment, n)
            wall, state = timed_autograde(course, a.assignment, a.timeout, cluster=dask.address)
            unit = sum(r["seconds"] for r in state.values()) / n
            print(f"--cluster (scheduler + {workers} x 1 thread): {wall:7.1f} s  "
                  f"({wall / n:.2f} s/submission; the unit itself took {unit:.2f} s on a worker)")
            print(f"cluster / local wall: {wall / local_wall:.2f}x")
            overhead = wall * workers / n - unit
            print(f"cluster overhead per submission (batch): {overhead:+.3f} s (target < 0.2 s)")
            rt = round_trip(dask.address, course, a.assignment, a.timeout)
            print(f"cluster overhead per submission (round trip of the job bytes): {rt:.3f} s")
        if not a.no_projection:
            real = Course.load(find_course_root(HERE))
            wall_s, cpu_s = {}, {}
            with DaskExecutor(address=dask.address) as ex:
                for asg in real.assignments():
                    c = make_course(base / f"one-{asg}", asg, 1)  # s000: a correct submission
                    settings = autograde.settings_for(c, asg, autograde.Limits(timeout=a.timeout))
                    (job,) = autograde.jobs_for(c, asg, ["s000"], settings)
                    ex.submit(cluster_grade.UNIT, job, key=asg)
                for out in ex.as_completed():
                    assert out.ok and out.value.error is None, (out.key, out.error)
                    wall_s[out.key], cpu_s[out.key] = out.seconds, out.value.cpu_seconds
            print("one correct submission per assignment on a worker, wall / CPU s: " + ", ".join(
                f"{k} {wall_s[k]:.1f}/{cpu_s[k]:.1f}" for k in sorted(wall_s)))
            for label, per in (("wall time under this load", wall_s),
                               ("CPU time (an idle core each)", cpu_s)):
                student = sum(per.values()) + len(per) * max(overhead, 0.0)
                print(f"projection from {label}: {student:.1f} s a student")
                for w in (1, 2, 3, 4, 6):
                    minutes = 300 * student / (2 * w) / 60
                    print(f"  300 students x {len(per)} assignments on {w} two-core worker(s): "
                          f"{minutes:6.1f} min" + ("  (target <= 20 min)" if w == 3 else ""))
        print(f"uptime after: {uptime()}")
    finally:
        if dask is not None:
            dask.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
