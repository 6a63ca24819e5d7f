"""A class's whole cycle through the console script, on the toy assignment (marked slow): class
list, due date with a per-day penalty, a Blackboard download with attempts, receipts, a late and a
broken submission and a student not on the list; autograde, feedback (a page for the broken file,
math offline), exports, report; a changed test re-released with --force, stale grades regraded
with --stale; and the audit log of it all. The last test opens a feedback page in Chromium with
every network request refused and checks the math was typeset."""

from __future__ import annotations

import csv
import hashlib
import json
import zipfile
from datetime import UTC, datetime

import nbformat
import pytest

from cnnlab.cli import main
from cnnlab.instructor import demo, versions
from cnnlab.instructor.course import Course
from cnnlab.instructor.feedback import MATHJAX_FILE

pytestmark = pytest.mark.slow
T_ADA1, T_ADA2, T_GRACE = "2025-10-01-09-00-00", "2025-10-01-11-00-00", "2025-10-02-10-00-00"


def _sample(course, kind):
    src = nbformat.read(str(course.source / "toy" / "toy.ipynb"), 4)
    rel = nbformat.read(str(course.release / "toy" / "toy.ipynb"), 4)
    return nbformat.writes(demo.sample_submission(src, rel, kind)).encode()


def _receipt(full, user):
    return f"Name: {full} ({user})\nAssignment: Toy\nDate Submitted: today\n".encode()


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    root = demo.toy_course(tmp_path_factory.mktemp("class"))
    with open(root / "nbgrader_config.py", "a") as f:
        f.write('c.AssignLatePenalties.plugin_class = "cnnlab.instructor.late.PerDayPenalty"\n'
                "c.PerDayPenalty.fraction_per_day = 0.1\n")
    course = Course.load(root)
    c = ["--course", str(root)]
    (root / "class.csv").write_text("id,name,email,section\nada,Ada Lovelace,ada@x.org,A\n"
                                    "grace,Grace Hopper,grace@x.org,A\nalan,Alan Turing,,B\n"
                                    "broken,Bro Ken,,B\nabsent,Ab Sent,,B\n")
    assert main(c + ["release", "toy"]) == 0
    assert main(c + ["roster", "import", str(root / "class.csv")]) == 0
    assert main(c + ["due", "toy", "2025-10-01 12:00"]) == 0
    zpath = root / "blackboard.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for user, ts, kind in (("ada", T_ADA1, "blank"), ("ada", T_ADA2, "correct"),
                               ("grace", T_GRACE, "partial"), ("alan", T_ADA1, "blank"),
                               ("mallory", T_ADA1, "correct")):
            z.writestr(f"Toy_{user}_attempt_{ts}_toy.ipynb", _sample(course, kind))
            z.writestr(f"Toy_{user}_attempt_{ts}.txt", _receipt(user.title(), user))
        z.writestr(f"Toy_broken_attempt_{T_ADA1}_toy.ipynb", b'{"cells": [')
    assert main(c + ["collect", "toy", str(zpath)]) == 0
    assert main(c + ["autograde", "toy", "--jobs", "2", "--timeout", "20"]) == 0
    assert main(c + ["feedback", "toy"]) == 0
    assert main(c + ["export", "toy"]) == 0
    assert main(c + ["export", "toy", "--format", "canvas"]) == 0
    assert main(c + ["report", "toy"]) == 0
    first = _grades(course)
    # a test changes: release refuses without --force, then the grades are stale
    path = course.source / "toy" / "toy.ipynb"
    nb = nbformat.read(str(path), 4)
    nb.cells[3].source += "\nassert square(10) == 100"
    nbformat.write(nb, str(path))
    refused = main(c + ["release", "toy"])
    assert main(c + ["release", "toy", "--force"]) == 0
    stale = versions.stale_students(course, "toy")
    assert main(c + ["export", "toy"]) == 0
    stale_rows = _grades(course)
    assert main(c + ["autograde", "toy", "--stale", "--jobs", "2", "--timeout", "20"]) == 0
    assert main(c + ["export", "toy"]) == 0
    return {"course": course, "first": first, "refused": refused, "stale": stale,
            "stale_rows": stale_rows, "after": _grades(course)}


def _grades(course):
    with open(course.grading / "grades-toy.csv") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def test_scores_with_the_latest_attempt_and_the_late_penalty(cycle):
    g = cycle["first"]
    assert {s: float(r["score"]) for s, r in g.items()} == {
        "ada": 5.0, "grace": pytest.approx(3 * 0.9), "alan": 0.0, "broken": 0.0,
        "mallory": 5.0, "absent": 0.0}
    assert g["absent"]["status"] == "missing" and g["broken"]["status"] == "unusable"
    assert float(g["grace"]["seconds_late"]) == 22 * 3600
    stamp = (cycle["course"].submitted / "ada" / "toy" / "timestamp.txt").read_text()
    assert stamp.startswith("2025-10-01 11:00:00")


def test_canvas_file_and_report_show_the_penalty_and_the_gaps(cycle):
    course = cycle["course"]
    with open(course.grading / "canvas-grades-toy.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][5] == "toy" and rows[1][0].strip() == "Points Possible"
    by_login = {r[3]: r[5] for r in rows[2:]}  # no Canvas ids here: the login identifies
    assert by_login["grace"] == "2.7" and by_login["absent"] == ""
    page = (course.grading / "report-toy.html").read_text()
    section = page.split('id="missing-late-stale"')[1].split('id="flagged"')[0]
    assert "Missing (1)" in section and "absent" in section
    assert "Not on the class list (1)" in section and "mallory" in section
    assert "<td>grace</td><td>22.0 h</td><td>-0.3</td>" in section
    assert "Toy_ada_attempt_2025-10-01-09-00-00_toy.ipynb" in section  # the dropped attempt
    flagged = page.split('id="flagged"')[1]
    assert "not on the class list" in flagged  # mallory


def test_feedback_reaches_every_student_with_math_offline(cycle):
    course = cycle["course"]
    pages = {p.parent.parent.name: p for p in course.feedback.glob("*/toy/toy.html")}
    assert set(pages) == {"ada", "grace", "alan", "broken", "mallory"}
    broken = pages["broken"].read_text()
    assert "could not be graded" in broken and "malformed JSON" in broken
    grace = pages["grace"].read_text()
    assert "Late submission penalty" in grace
    assert "cdnjs" not in grace and f'src="{MATHJAX_FILE}"' in grace
    assert (pages["grace"].parent / MATHJAX_FILE).stat().st_size > 1_000_000


def test_stale_until_regraded(cycle):
    assert cycle["refused"] == 2
    assert cycle["stale"] == ["ada", "alan", "broken", "grace", "mallory"]
    assert {s for s, r in cycle["stale_rows"].items() if r["stale"] == "True"} == set(
        cycle["stale"])
    assert all(r["stale"] == "False" for r in cycle["after"].values())
    assert float(cycle["after"]["ada"]["score"]) == 5.0  # the new test passes too


def test_audit_log_after_a_full_cycle(cycle, capsys):
    course = cycle["course"]
    records = [json.loads(x) for x in (course.grading / "audit.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records] == [
        "release", "collect", "autograde", "feedback", "export", "export", "release", "export",
        "autograde", "export"]
    grading = [r for r in records if r["event"] == "autograde"]
    assert grading[0]["version"] != grading[1]["version"]
    assert grading[1]["version"] == versions.source_version(course, "toy")
    ada = next(e for e in grading[0]["entries"] if e["student"] == "ada")
    sub = course.submitted / "ada" / "toy" / "toy.ipynb"
    assert ada["files"] == {"toy.ipynb": hashlib.sha256(sub.read_bytes()).hexdigest()}
    assert (ada["score"], ada["max_score"], ada["status"]) == (5.0, 5.0, "graded")
    grace = next(e for e in grading[0]["entries"] if e["student"] == "grace")
    assert grace["score"] == 3.0 and grace["late_penalty"] == pytest.approx(0.3)
    assert {e["student"] for e in grading[0]["entries"]} == {
        "ada", "grace", "alan", "broken", "mallory"}
    collected = next(r for r in records if r["event"] == "collect")
    assert collected["layout"] == "blackboard"
    assert {e["student"]: e["status"] for e in collected["entries"]}["broken"] == "unusable"
    assert all(r["user"] and datetime.fromisoformat(r["time"]).tzinfo == UTC for r in records)
    assert main(["--course", str(course.root), "log", "ada"]) == 0
    out = capsys.readouterr().out
    assert out.count("autograde") == 2 and "5/5" in out and "grace" not in out


@pytest.mark.browser
def test_feedback_math_renders_without_a_network(cycle):
    from playwright.sync_api import sync_playwright

    page_path = cycle["course"].feedback / "grace" / "toy" / "toy.html"
    refused = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()

        def route(r):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                refused.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(page_path.as_uri())
        page.wait_for_selector("mjx-container", timeout=30_000)
        n = page.locator("mjx-container").count()
        browser.close()
    assert n >= 2, "the two formulas of the toy's introduction were not typeset"
    assert not refused, refused
