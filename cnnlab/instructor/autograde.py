"""``cnnlab autograde``: grade every submission of an assignment, each in its own sandbox.

The steps, in this process (the parent):

1. ``jobs_for``: one ``Job`` per collected submission (its notebook bytes, the instructor's
   source and released notebooks, the run's ``Settings``);
2. ``run_jobs``: ``runner.grade.grade_submission`` for each job, on a pool of ``jobs`` worker
   processes (any ``concurrent.futures`` executor runs the same unit);
3. ``write_result``: each result, matched to the job that was handed out, goes into the
   gradebook through nbgrader's Gradebook API, with the autograded notebook the worker built;
   only this process writes the gradebook, one student at a time.

Every student's time, flags and status go to ``grading/cnnlab/<assignment>/autograde.json`` for
``cnnlab report``. Re-running grades the same submissions into the same rows.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .collect import collect_record
from .course import Course, read_json, write_json
from .runner.protocol import Job, Result, Settings

UNSAFE_FLAG = "graded WITHOUT a sandbox (--unsafe-no-sandbox): the student's code could reach " \
              "this machine"


@dataclass
class Limits:
    """Per-submission limits (the CLI's options)."""

    timeout: int | None = None   # seconds per cell (default: the course's Execute.timeout)
    mem_mb: int = 4096           # address space of each sandboxed process
    fsize_mb: int = 64           # largest file the student's code may write
    max_output_chars: int = 20_000   # output text kept per cell
    deadline: float | None = None    # seconds for a whole submission (default: from timeout)
    unsafe_no_sandbox: bool = False  # grade without bubblewrap (macOS): no isolation


def submitted_students(course: Course, assignment: str) -> list[str]:
    if not course.submitted.is_dir():
        return []
    return sorted(d.name for d in course.submitted.iterdir()
                  if (d / assignment).is_dir() and any((d / assignment).glob("*.ipynb")))


def _check_released(course: Course, assignment: str) -> None:
    from nbgrader.api import MissingEntry

    if not course.has_gradebook:
        raise ValueError(f"no gradebook at {course.db_path}: run `cnnlab release {assignment}` "
                         "first")
    with course.gradebook() as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"assignment {assignment!r} is not in the gradebook: run "
                             f"`cnnlab release {assignment}` first") from None


def settings_for(course: Course, assignment: str, limits: Limits) -> Settings:
    """The run's settings: the CLI's limits and the assignment's import policy."""
    timeout = limits.timeout or course.execute_timeout
    cells = 0
    for name in course.notebooks(assignment):
        nb = nbformat.read(str(course.source / assignment / f"{name}.ipynb"), 4)
        cells += sum(c.cell_type == "code" for c in nb.cells)
    return Settings(timeout=float(timeout), importable=course.importable(assignment),
                    mem_mb=limits.mem_mb, fsize_mb=limits.fsize_mb,
                    max_output_chars=limits.max_output_chars,
                    deadline=float(limits.deadline or timeout * (cells + 2) + 120),
                    unsafe_no_sandbox=limits.unsafe_no_sandbox)


def jobs_for(course: Course, assignment: str, students: list[str], settings: Settings) -> list:
    def read(folder: Path) -> dict[str, bytes]:
        return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.ipynb"))}

    source, release = read(course.source / assignment), read(course.release / assignment)
    return [Job(s, assignment, read(course.submitted / s / assignment), source, release,
                settings) for s in students]


THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_threads(jobs: int, cpus: int | None = None) -> int:
    """Threads each of ``jobs`` workers (and the sandboxes it starts) may use: the cores shared
    out. Two workers with torch's default of two threads each, on two cores, ran each submission
    of 08_architectures about 3x slower than one worker alone: they must not oversubscribe."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, jobs))


def _init_worker(threads: int) -> None:
    """A grading worker's start: its thread budget for the BLAS, OpenMP and torch, also passed
    on to the sandboxes it starts (unless the instructor set these variables)."""
    for name in THREAD_ENV:
        os.environ.setdefault(name, str(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _pool(jobs: int, assignment_uses_torch: bool) -> ProcessPoolExecutor:
    """Worker processes forked from a server that has imported the grader (and torch) once,
    each with its share of the cores."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["cnnlab.instructor.runner.grade"]
                               + (["torch"] if assignment_uses_torch else []))
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                               initargs=(worker_threads(jobs),))


def run_jobs(jobs: list[Job], n_workers: int, executor=None):
    """Yield ``(job, Result or None, why)`` as each job finishes. A worker that dies costs its
    job (reported with why), not the others: the pool is replaced and the rest go on."""
    from .runner.grade import grade_submission

    uses_torch = any(b"import torch" in s for j in jobs[:1] for s in j.source.values())
    broken = yield from _run_batch(jobs, executor or _pool(n_workers, uses_torch),
                                   executor is None, grade_submission)
    for job in broken:  # a worker died under one of these: each alone, to find which
        yield from _run_batch([job], _pool(1, uses_torch), True, grade_submission,
                              why="the grading worker died (killed, or out of memory)")


def _run_batch(jobs, pool, own_pool: bool, unit, why: str | None = None):
    futures = {pool.submit(unit, j): j for j in jobs}
    broken = []
    try:
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                yield job, fut.result(), None
            except BrokenProcessPool:
                if why:
                    yield job, None, why
                else:
                    broken.append(job)
            except Exception as e:  # noqa: BLE001 (never lose the other students)
                yield job, None, f"grading error: {type(e).__name__}: {e}"
    finally:
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return broken


@contextlib.contextmanager
def _quiet_sqlalchemy():
    """nbgrader's ``update_or_create_submission`` makes SQLAlchemy warn about autoflush on a new
    submission (harmless, nbgrader's own code path); keep the console readable."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*")
        yield


def _timestamp(course: Course, assignment: str, student: str):
    path = course.submitted / student / assignment / "timestamp.txt"
    if not path.is_file():
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(path.read_text().strip())
    except Exception:  # noqa: BLE001 (a malformed timestamp: graded without one)
        return None


def write_result(course: Course, assignment: str, result: Result, flagged: bool):
    """Record one result's verdicts in the gradebook (one transaction, only the columns
    autograding owns: a manual grade entered in the formgrader meanwhile is kept) and its
    autograded notebooks on disk; return (score, max score)."""
    from nbgrader.api import MissingEntry

    student = result.student
    with _quiet_sqlalchemy(), course.gradebook() as gb:
        gb.update_or_create_student(student)
        ts = _timestamp(course, assignment, student)
        gb.update_or_create_submission(assignment, student, **({"timestamp": ts} if ts else {}))
        for v in result.verdicts:
            try:
                grade = gb.find_grade(v.cell, v.notebook, assignment, student)
            except MissingEntry:
                continue  # a cell the gradebook does not know (changed since release)
            grade.auto_score = v.points
            grade.needs_manual_grade = v.needs_manual
        for nb in gb.find_submission(assignment, student).notebooks:
            nb.flagged = flagged
        gb.db.commit()
        s = gb.find_submission(assignment, student)
        score, max_score = float(s.score), float(s.max_score)
    dest = course.autograded / student / assignment
    tmp = dest.with_name(dest.name + ".incoming")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in result.notebooks.items():
        (tmp / f"{name}.ipynb").write_bytes(data)
    stamp = course.submitted / student / assignment / "timestamp.txt"
    if stamp.is_file():
        shutil.copyfile(stamp, tmp / "timestamp.txt")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return score, max_score


def zero_submission(course: Course, assignment: str, student: str) -> tuple[float, float]:
    """Record a submission that could not be graded: 0 on every graded cell, flagged."""
    with _quiet_sqlalchemy(), course.gradebook() as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            for g in nb.grades:
                g.auto_score = 0.0
                g.needs_manual_grade = False
            nb.flagged = True
        gb.db.commit()
        s = gb.find_submission(assignment, student)
        return float(s.score), float(s.max_score)


def autograde(course: Course, assignment: str, jobs: int = 1, limits: Limits | None = None,
              students: list[str] | None = None, log=print, executor=None, stale: bool = False,
              cluster: str | None = None, force: bool = False) -> dict:
    """Autograde every collected submission of ``assignment`` with ``jobs`` worker processes
    or on a Dask ``cluster`` (``local:N`` or a scheduler's address: ``cluster_grade``);
    only what is missing, failed or changed since the last run is graded, unless ``force`` or
    ``students`` (``stale``: only the students graded against an older version), holding the
    course's lock; then late penalties, graded versions and the audit log.

    Returns the per-student record also written to ``autograde.json``."""
    # --- class300: lock, --stale, late penalties, versions, audit (around the grading run) ---
    from . import audit, late, versions
    from .lock import course_lock

    with course_lock(course, "autograde", assignment):
        if stale:
            students = versions.stale_students(course, assignment)
            log(f"stale: {len(students)} student(s) graded against an older version"
                + (f": {', '.join(students)}" if students else ""))
            if not students:
                return read_json(course.state_dir(assignment) / "autograde.json", {})
        ran = set(submitted_students(course, assignment)) | set(
            collect_record(course, assignment)["unusable"])
        state = _autograde(course, assignment, jobs=jobs, limits=limits, students=students,
                           log=log, executor=executor,
                           cluster=cluster, force=force)
        graded = sorted(s for s in ran if s in state and (not students or s in students))
        penalties = late.apply_penalties(course, assignment, graded, log=log)
        versions.record_graded(course, assignment, graded)
        audit.append(course, "autograde", assignment, [
            audit.submission_entry(course, assignment, s, score=state[s]["score"],
                                   max_score=state[s]["max_score"], status=state[s]["status"],
                                   late_penalty=penalties.get(s, 0.0))
            for s in graded], jobs=jobs)
    return state


def _autograde(course: Course, assignment: str, jobs: int = 1, limits: Limits | None = None,
               students: list[str] | None = None, log=print, executor=None,
               cluster: str | None = None, force: bool = False) -> dict:
    """The grading run itself (see ``autograde``)."""
    from . import cluster_grade as scale
    from .cluster import progress
    from .runner import sandbox

    limits = limits or Limits()
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: need at least one worker process")
    course.check_assignment(assignment)
    _check_released(course, assignment)
    settings = settings_for(course, assignment, limits)
    try:
        sandbox.check_available(sandbox.Policy(unsafe_no_sandbox=settings.unsafe_no_sandbox))
    except sandbox.SandboxUnavailable as e:
        raise ValueError(str(e)) from None
    if settings.unsafe_no_sandbox:
        log(f"WARNING: {UNSAFE_FLAG}")
    submitted = submitted_students(course, assignment)
    todo = [s for s in submitted if not students or s in students]
    record = collect_record(course, assignment)
    unusable = {s: r for s, r in record["unusable"].items()
                if s not in submitted and (not students or s in students)}
    state_path = course.state_dir(assignment) / "autograde.json"
    state = read_json(state_path, {})
    t_start = time.perf_counter()
    batch, current = scale.plan(jobs_for(course, assignment, todo, settings), state,
                                force=force or bool(students))
    if current:
        log(f"{len(current)} submission(s) graded before and unchanged, kept (--force regrades)")
    expected = scale.expected_seconds(state, [j.student for j in batch])
    runs = (run_jobs(batch, max(1, min(jobs, len(batch))), executor) if cluster is None
            else scale.run_on_cluster(cluster, batch, expected))
    for job, result, why in progress(runs, expected, key=lambda run: run[0].student,
                                     desc=f"grading {assignment}"):
        student = job.student
        flags = list(record["flags"].get(student, []))
        if result is not None and (result.student, result.assignment) != (student, assignment):
            result, why = None, "the worker answered for another job"  # never merged
        if result is not None and result.error is None:
            flags += result.flags + ([UNSAFE_FLAG] if result.unsafe else [])
            score, max_score = write_result(course, assignment, result, flagged=bool(flags))
            status, seconds, cells = "graded", result.seconds, result.cell_seconds
            cpu = result.cpu_seconds
        else:
            flags += (result.flags if result else []) + [
                f"not graded, scored 0: {result.error if result else why}"]
            score, max_score = zero_submission(course, assignment, student)
            status, seconds, cells = "failed", result.seconds if result else 0.0, {}
            cpu = result.cpu_seconds if result else 0.0
        state[student] = {"status": status, "score": score, "max_score": max_score,
                          "seconds": round(seconds, 3), "cpu_seconds": cpu, "cell_seconds": cells,
                          "flags": flags, **scale.fingerprint(job)}
        write_json(state_path, state)  # after every student: a crash loses nothing done
        log(f"{status:7s} {student}: {score:g}/{max_score:g} in {seconds:.1f} s"
            + (f"  [{len(flags)} flag(s)]" if flags else ""))
    for student, reasons in sorted(unusable.items()):
        score, max_score = zero_submission(course, assignment, student)
        state[student] = {"status": "unusable", "score": score, "max_score": max_score,
                          "seconds": 0.0, "cell_seconds": {},
                          "flags": list(record["flags"].get(student, [])) + [
                              f"no usable notebook, scored 0: {r}" for r in reasons]}
        log(f"unusable {student}: 0/{max_score:g} ({'; '.join(reasons)})")
    write_json(state_path, state)
    where = f"on {cluster}" if cluster else f"with {max(1, min(jobs, len(batch)))} worker(s)"
    log(f"autograded {len(batch)} submission(s) of {assignment} {where} in "
        f"{time.perf_counter() - t_start:.1f} s")
    return state
