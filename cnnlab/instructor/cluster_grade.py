"""What ``cnnlab autograde`` adds to scale out: grading on a Dask cluster, and re-runs that grade
only what is missing or stale.

``run_on_cluster(cluster, jobs, expected)`` answers like ``autograde.run_jobs``, ``(job, Result or
None, why)`` as each job finishes, but runs the trusted unit (``UNIT``: the runner's
``grade_submission``) as one Dask task per submission: the task carries the ``Job`` (the
submission's bytes, the instructor's source and released notebooks, the settings) and returns the
``Result``; the parent alone writes the gradebook. A re-run skips a submission whose last record
says it was graded from the same bytes and the same release (``fingerprint``); the others go
longest-expected first (last run's seconds), so one slow notebook does not leave a tail.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterator

from .cluster import executor_for
from .runner.protocol import Job, Result


def UNIT(job: Job) -> Result:  # noqa: N802 (the one name of the unit every executor runs)
    from .runner.grade import grade_submission

    return grade_submission(job)


def _digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def fingerprint(job: Job) -> dict[str, str]:
    """The submission's digest and the assignment's release id (a digest of the instructor's
    source and released notebooks): a record with both unchanged still stands."""
    return {"digest": _digest(job.submission),
            "release_id": _digest({**{f"source/{k}": v for k, v in job.source.items()},
                                   **{f"release/{k}": v for k, v in job.release.items()}})}


def is_current(record: dict | None, job: Job) -> bool:
    """Whether last run's ``record`` of ``job``'s student stands: graded from the same bytes and
    the same release."""
    if not record or record.get("status") != "graded":
        return False
    return all(record.get(k) == v for k, v in fingerprint(job).items())


def expected_seconds(state: dict, students: list[str]) -> dict[str, float]:
    """Last run's seconds per student; the median of the graded ones for a newcomer (1 s if
    nothing was graded yet)."""
    known = [r["seconds"] for r in state.values() if r.get("status") == "graded"]
    typical = statistics.median(known) if known else 1.0
    return {s: float(state.get(s, {}).get("seconds") or typical) for s in students}


def plan(jobs: list[Job], state: dict, force: bool) -> tuple[list[Job], list[str]]:
    """(the jobs to run, longest expected first; the students whose record stands)."""
    todo = [j for j in jobs if force or not is_current(state.get(j.student), j)]
    expected = expected_seconds(state, [j.student for j in todo])
    todo.sort(key=lambda j: -expected[j.student])  # stable: ties keep the students' order
    return todo, sorted({j.student for j in jobs} - {j.student for j in todo})


def run_on_cluster(cluster: str, jobs: list[Job], expected: dict[str, float]
                   ) -> Iterator[tuple[Job, Result | None, str | None]]:
    """``--cluster local:N`` or ``tcp://host:port``: one task per job (see ``cluster``)."""
    by_student = {j.student: j for j in jobs}
    with executor_for(cluster) as ex:
        ex.preload(["cnnlab.instructor.runner.grade"])  # while the workers wait for tasks
        for job in jobs:
            ex.submit(UNIT, job, key=job.student, expected_seconds=expected[job.student])
        for out in ex.as_completed():
            yield by_student[out.key], out.value if out.ok else None, out.error
