"""``cnnlab autograde A --cluster ...``: one task per submission on an executor, only the parent
writes the gradebook.

The parent packs each submission (its bytes, the assignment's release id, the shared assignment
bundle: ``remote.py``), submits it with the time it took last run (longest first), and as each
outcome arrives writes it through nbgrader's Gradebook API in one transaction, copies the
autograded notebooks and records the student in ``autograde.json``, so an interrupted run loses
nothing graded. A re-run grades only what is missing or stale: a submission whose bytes or whose
assignment's release id changed, or one that failed last time (``--force`` regrades everyone,
``--student`` the ones named). The unit that grades is named in one place, ``UNIT``.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from . import remote
from .autograde import (
    Limits,
    _check_released,
    _copy_autograded,
    merge_result,
    snapshot_gradebook,
    submitted_students,
    zero_submission,
)
from .cluster import Executor, executor_for, progress
from .collect import collect_record
from .course import Course, read_json, write_json

UNIT = remote.grade_remote  # the per-submission unit every executor runs


def release_id(course: Course, assignment: str) -> str:
    """A digest of the assignment as released: its source and release folders."""
    return remote.tree_digest({**{f"source/{k}": v for k, v in
                                  remote.read_tree(course.source / assignment).items()},
                               **{f"release/{k}": v for k, v in
                                  remote.read_tree(course.release / assignment).items()}})


def is_current(record: dict | None, digest: str, rid: str) -> bool:
    """Whether last run's ``record`` of a student still stands for these bytes and release."""
    return bool(record) and record.get("status") == "graded" and (
        record.get("digest") == digest and record.get("release_id") == rid)


def expected_seconds(state: dict, students: list[str]) -> dict[str, float]:
    """Last run's time per student; the median of the others for one never graded (1 s if none)."""
    known = [r["seconds"] for r in state.values() if r.get("status") == "graded"]
    typical = statistics.median(known) if known else 1.0
    return {s: float(state.get(s, {}).get("seconds") or typical) for s in students}


def bundle(course: Course, assignment: str, limits: Limits) -> remote.AssignmentBundle:
    with tempfile.TemporaryDirectory(prefix="cnnlab-bundle-") as tmp:
        db = Path(tmp) / "definitions.db"
        snapshot_gradebook(course.db_url, db, definitions_only=True)
        gradebook = db.read_bytes()
    return remote.AssignmentBundle(
        name=assignment, release_id=release_id(course, assignment),
        config=(course.root / "nbgrader_config.py").read_bytes(),
        source=remote.read_tree(course.source / assignment),
        release=remote.read_tree(course.release / assignment), gradebook=gradebook,
        limits=limits)


def autograde_on(course: Course, assignment: str, executor: Executor, limits: Limits,
                 students: list[str] | None = None, force: bool = False, log=print) -> dict:
    """Grade the missing and stale submissions of ``assignment`` on ``executor``."""
    course.check_assignment(assignment)
    _check_released(course, assignment)
    t_start = time.perf_counter()
    state_path = course.state_dir(assignment) / "autograde.json"
    state = read_json(state_path, {})
    record = collect_record(course, assignment)
    shared = bundle(course, assignment, limits)
    todo: dict[str, remote.RemoteJob] = {}
    up_to_date = []
    submitted = submitted_students(course, assignment)
    for s in submitted:
        if students and s not in students:
            continue
        files = remote.read_tree(course.submitted / s / assignment)
        digest = remote.tree_digest(files)
        if not (force or students) and is_current(state.get(s), digest, shared.release_id):
            up_to_date.append(s)
            continue
        todo[s] = remote.RemoteJob(s, files, digest, shared)
    if up_to_date:
        log(f"{len(up_to_date)} submission(s) already graded and unchanged (--force regrades)")
    expected = expected_seconds(state, list(todo))
    for s, job in todo.items():
        executor.submit(UNIT, job, key=s, expected_seconds=expected[s])
    for out in progress(executor.as_completed(), expected, desc=f"grading {assignment}"):
        s = out.key
        flags = list(record["flags"].get(s, []))
        res = out.value.result if out.ok else None
        if res is not None and res.get("error") is None and res.get("notebooks"):
            flags += res["flags"]
            score, max_score = merge_result(course, assignment, res, flagged=bool(flags))
            with tempfile.TemporaryDirectory(prefix="cnnlab-graded-") as tmp:
                remote.write_tree(out.value.autograded, Path(tmp))
                _copy_autograded(Path(tmp), course.autograded / s / assignment,
                                 course.source / assignment)
            status, seconds = "graded", res["seconds"]
        else:
            why = (res or {}).get("error") or out.error
            flags += (res or {}).get("flags", []) + [f"not graded, scored 0: {why}"]
            score, max_score = zero_submission(course, assignment, s)
            status, seconds = "failed", out.seconds
        state[s] = {"status": status, "score": score, "max_score": max_score,
                    "seconds": round(seconds, 3), "cell_seconds": (res or {}).get(
                        "cell_seconds", {}), "flags": flags, "digest": todo[s].digest,
                    "release_id": shared.release_id, "where": out.where,
                    "task_seconds": round(out.seconds, 3)}
        write_json(state_path, state)  # after every student: a crash loses nothing done
        log(f"{status:7s} {s}: {score:g}/{max_score:g} in {seconds:.1f} s on {out.where or '?'}"
            + (f"  [{len(flags)} flag(s)]" if flags else ""))
    for s, reasons in sorted(record["unusable"].items()):
        if s in submitted or (students and s not in students):
            continue
        score, max_score = zero_submission(course, assignment, s)
        state[s] = {"status": "unusable", "score": score, "max_score": max_score,
                    "seconds": 0.0, "cell_seconds": {},
                    "flags": list(record["flags"].get(s, [])) + [
                        f"no usable notebook, scored 0: {r}" for r in reasons]}
        log(f"unusable {s}: 0/{max_score:g} ({'; '.join(reasons)})")
    write_json(state_path, state)
    log(f"autograded {len(todo)} submission(s) of {assignment} in "
        f"{time.perf_counter() - t_start:.1f} s")
    return state


def autograde_cluster(course: Course, assignment: str, cluster: str, limits: Limits,
                      students: list[str] | None = None, force: bool = False,
                      log=print) -> dict:
    """``--cluster local:N`` or ``--cluster tcp://host:port``: see ``cluster.executor_for``."""
    if limits.timeout is None:
        limits = dataclasses.replace(limits, timeout=course.execute_timeout)
    with executor_for(cluster) as ex:
        return autograde_on(course, assignment, ex, limits, students, force, log)
