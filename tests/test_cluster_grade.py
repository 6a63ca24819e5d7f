"""``cnnlab autograde --cluster``: a batch graded through a real Dask scheduler and two workers
into a real PostgreSQL gradebook equals the same batch graded by the local pool into sqlite, cell
by cell, even though one worker machine is lost in the middle of the batch.
"""

from __future__ import annotations

import os
import signal

import pytest
from daskproc import start_cluster
from pg import postgres  # noqa: F401  (the fixture)

from cnnlab.cli import main
from cnnlab.instructor import autograde, cluster_grade, demo
from cnnlab.instructor.course import Course, read_json
from cnnlab.instructor.runner.protocol import Job

KINDS = {"ada": "correct", "grace": "partial", "alan": "blank", "edsger": "correct",
         "barbara": "partial", "john": "blank"}


def _course(root, db_url=None):
    demo.toy_course(root)
    if db_url:
        with open(root / "nbgrader_config.py", "a") as f:
            f.write(f"c.CourseDirectory.db_url = {db_url!r}\n")
    course = Course.load(root)
    c = ["--course", str(root)]
    assert main(c + ["release", "toy"]) == 0
    zpath = demo.write_sample_zip(course, "toy", root / "download.zip", students=KINDS)
    assert main(c + ["collect", "toy", str(zpath)]) == 0
    return course


def _cells(course):
    """(student, notebook, grade id) -> (auto score, max score, needs manual grade), and the
    per-student totals, read back through nbgrader's Gradebook API."""
    cells, totals = {}, {}
    with course.gradebook() as gb:
        for s in KINDS:
            sub = gb.find_submission("toy", s)
            totals[s] = (sub.score, sub.max_score, [nb.flagged for nb in sub.notebooks])
            for nb in sub.notebooks:
                for g in nb.grades:
                    cells[s, nb.name, g.name] = (g.auto_score, g.max_score, g.needs_manual_grade)
    return cells, totals


@pytest.mark.slow
def test_dask_into_postgresql_equals_local_into_sqlite(postgres, tmp_path):  # noqa: F811
    local = _course(tmp_path / "local")
    assert main(["--course", str(local.root), "autograde", "toy", "--jobs", "2",
                 "--timeout", "30"]) == 0

    remote = _course(tmp_path / "remote", postgres.new_database())
    dask = start_cluster(2)
    lost = []

    def log(line):  # after the first result, the second worker machine goes down mid-task
        if line.startswith("graded") and not lost:
            worker = dask.procs[2]
            os.killpg(worker.pid, signal.SIGKILL)
            lost.append(worker.pid)

    try:
        state = autograde.autograde(remote, "toy", cluster=dask.address, log=log,
                                    limits=autograde.Limits(timeout=30))
    finally:
        dask.stop()
    assert lost, "no worker was killed: the batch finished before the first result?"
    assert {s: r["status"] for s, r in state.items()} == dict.fromkeys(KINDS, "graded")
    assert len(_cells(local)[0]) == 3 * len(KINDS)
    assert _cells(remote) == _cells(local)
    for s in KINDS:  # the autograded notebooks came back from the workers
        assert (remote.autograded / s / "toy" / "toy.ipynb").is_file()

    # a re-run grades nothing that is graded and unchanged; a changed submission is regraded
    again = autograde.autograde(remote, "toy", cluster="local:1", log=lambda *a: None,
                                limits=autograde.Limits(timeout=30))
    assert again == read_json(remote.state_dir("toy") / "autograde.json", {}) == state
    sub = remote.submitted / "alan" / "toy" / "toy.ipynb"
    sub.write_bytes((remote.submitted / "ada" / "toy" / "toy.ipynb").read_bytes())
    seen = []
    autograde.autograde(remote, "toy", cluster="local:1", log=seen.append,
                        limits=autograde.Limits(timeout=30))
    assert [line.split()[:2] for line in seen if line.startswith("graded")] == [
        ["graded", "alan:"]]
    assert _cells(remote)[1]["alan"][0] == 5.0


def _job(student="ada", nb=b"{}", source=b"src"):
    return Job(student, "toy", {"toy": nb}, {"toy": source}, {"toy": b"rel"})


def test_stale_rules():
    job = _job()
    rec = {"status": "graded", "seconds": 4.0, **cluster_grade.fingerprint(job)}
    assert cluster_grade.is_current(rec, job)
    assert not cluster_grade.is_current(rec, _job(nb=b"{ }"))  # the student handed in again
    assert not cluster_grade.is_current(rec, _job(source=b"src2"))  # the assignment changed
    assert not cluster_grade.is_current(dict(rec, status="failed"), job)
    assert not cluster_grade.is_current(None, job)
    state = {"ada": rec, "b": dict(rec, seconds=2.0), "c": dict(rec, seconds=9.0)}
    assert cluster_grade.expected_seconds(state, ["ada", "new"]) == {"ada": 4.0, "new": 4.0}
    assert cluster_grade.expected_seconds({}, ["new"]) == {"new": 1.0}
    todo, kept = cluster_grade.plan([job, _job("b", nb=b"x"), _job("c", nb=b"y"),
                                     _job("new")], state, force=False)
    assert [j.student for j in todo] == ["c", "new", "b"] and kept == ["ada"]
    todo, kept = cluster_grade.plan([job], state, force=True)
    assert [j.student for j in todo] == ["ada"] and kept == []
