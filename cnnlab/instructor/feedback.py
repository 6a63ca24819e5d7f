"""``cnnlab feedback``: per-student HTML feedback with nbgrader, hidden tests kept hidden.

nbgrader's feedback renders the autograded notebook, where ``OverwriteCells`` has put back the
full test cells, hidden tests included, and the traceback of a failing hidden assertion quotes its
line. ``HideHiddenTests`` runs first: in every graded test cell it replaces each
``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region with one line saying tests are
hidden, and in a cell that had hidden tests it shortens an error to ``Name: message`` (no
traceback with source lines). Output: ``grading/feedback/<student>/<assignment>/<nb>.html``.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from .course import Course
from .notebooks import is_test_cell, strip_hidden_tests

PLACEHOLDER = "# hidden tests (not shown): they check more cases of the same function"


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden test source (and the tracebacks that would quote it) before rendering."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_test_cell(cell) and "BEGIN HIDDEN TESTS" in cell.source:
            cell.source = strip_hidden_tests(cell.source, PLACEHOLDER)
            outputs = []
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    ename, evalue = o.get("ename", "Error"), o.get("evalue", "")
                    o = NotebookNode(output_type="error", ename=ename, evalue=evalue,
                                     traceback=[f"{ename}: {evalue}" if evalue else ename])
                outputs.append(o)
            cell.outputs = outputs
        return cell, resources


def feedback(course: Course, assignment: str, students: list[str] | None = None,
             log=print) -> list:
    """Generate feedback for every autograded student of ``assignment``; return the HTML paths."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

    course.check_assignment(assignment)
    done = sorted(d.parent.name for d in course.autograded.glob(f"*/{assignment}")
                  if d.is_dir()) if course.autograded.is_dir() else []
    if students:
        done = [s for s in done if s in students]
    ungraded = _ungraded(course, assignment, done, students)  # class300: pages for unusable files
    if not done and not ungraded:
        raise ValueError(f"no autograded submission of {assignment} in {course.autograded}: "
                         f"run `cnnlab autograde {assignment}` first")
    paths = []
    for student in done:
        cfg = course.nbgrader_config()
        cfg.CourseDirectory.assignment_id = assignment
        cfg.CourseDirectory.student_id = student
        cfg.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades,
                                              CSSHTMLHeaderPreprocessor]
        conv = GenerateFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
        conv.force = True
        try:
            conv.start()
        except Exception as e:  # one broken notebook must not stop the class's feedback
            log(f"FAILED feedback for {student}: {type(e).__name__}: {e}")
            continue
        out = sorted((course.feedback / student / assignment).glob("*.html"))
        paths.extend(out)
        log(f"feedback {student}: {', '.join(str(p) for p in out)}")
    # --- class300: a page for every file that could not be graded, math offline, audit ---
    paths.extend(unusable_pages(course, assignment, ungraded, log=log))
    offline_mathjax(course, paths)
    _audit_feedback(course, assignment, paths)
    return paths


def _ungraded(course: Course, assignment: str, done: list[str],
              students: list[str] | None) -> dict[str, list[str]]:
    """{student: reasons} of the students with no autograded notebook (unusable file, grading
    failed), from collect's and autograde's records."""
    from .collect import collect_record
    from .course import read_json

    out: dict[str, list[str]] = {}
    for s, reasons in collect_record(course, assignment).get("unusable", {}).items():
        out[s] = list(reasons)
    for s, info in read_json(course.state_dir(assignment) / "autograde.json", {}).items():
        if info.get("status") in ("failed", "unusable"):
            out.setdefault(s, [f for f in info.get("flags", []) if "scored 0" in f])
    return {s: r for s, r in sorted(out.items())
            if s not in done and (not students or s in students)}


def unusable_pages(course: Course, assignment: str, ungraded: dict[str, list[str]],
                   log=print) -> list:
    """A feedback page for each student whose file could not be graded, saying why (named as
    nbgrader names feedback: ``<feedback>/<student>/<assignment>/<notebook>.html``)."""
    import html

    from nbgrader.api import Gradebook, MissingEntry

    paths = []
    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            max_score = gb.find_assignment(assignment).max_score
        except MissingEntry:
            max_score = 0
    for student, reasons in ungraded.items():
        d = course.feedback / student / assignment
        d.mkdir(parents=True, exist_ok=True)
        items = ("".join(f"<li>{html.escape(r)}</li>" for r in reasons)
                 or "<li>no reason recorded</li>")
        for nb in course.notebooks(assignment):
            page = d / f"{nb}.html"
            page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(nb)}: not graded</title></head>
<body style="font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4">
<h1>{html.escape(assignment)}: your file could not be graded</h1>
<p>Student: <b>{html.escape(student)}</b>. Score: <b>0 / {max_score:g}</b>.</p>
<p>What the grader found:</p><ul>{items}</ul>
<p>Open your notebook in Jupyter, check that it opens and runs from top to bottom
(Kernel &gt; Restart &amp; Run All), save it, and hand in the <code>{html.escape(nb)}.ipynb</code>
file itself. Ask your instructor whether you may resubmit.</p>
</body></html>
""")
            paths.append(page)
        log(f"feedback {student}: not graded, page saying why: {d}")
    return paths


MATHJAX_FILE = "mathjax-3.2.2-tex-svg-full.js"
MATHJAX_CONFIG = """<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\(', '\\)']],
  displayMath: [['$$', '$$'], ['\\[', '\\]']], processEscapes: true}, svg: {fontCache: 'global'}};
</script>"""


def mathjax_source(course: Course):
    """The MathJax 3 bundle the book vendors (``book/_static/``), or None."""
    from pathlib import Path

    for root in (course.root, Path(__file__).resolve().parents[2]):
        p = root / "book" / "_static" / MATHJAX_FILE
        if p.is_file():
            return p
    return None


def offline_mathjax(course: Course, pages: list) -> None:
    """Make each feedback page render its math without a network: nbgrader's template loads
    MathJax 2 from a CDN; put the book's MathJax 3 (self-contained SVG output) next to the page
    (a hard link where the file system allows) and load that instead."""
    import os
    import re
    import shutil

    src = mathjax_source(course)
    if src is None:
        return
    cdn = re.compile(r'<script[^>]*src="https://cdn[^"]*mathjax[^"]*"[^>]*>\s*</script>', re.I)
    mj2 = re.compile(r'<script type="text/x-mathjax-config">.*?</script>', re.S)
    for page in pages:
        text = page.read_text()
        if MATHJAX_FILE in text or "mathjax" not in text.lower():
            continue
        new = mj2.sub("", cdn.sub(lambda m: f'{MATHJAX_CONFIG}\n<script src="{MATHJAX_FILE}">'
                                            "</script>", text))
        local = page.parent / MATHJAX_FILE
        if not local.exists():
            try:
                os.link(src, local)
            except OSError:
                shutil.copyfile(src, local)
        page.write_text(new)


def _audit_feedback(course: Course, assignment: str, pages: list) -> None:
    import hashlib

    from . import audit

    by_student: dict[str, dict] = {}
    for p in pages:
        student = p.parent.parent.name
        by_student.setdefault(student, {})[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    audit.append(course, "feedback", assignment, [
        audit.submission_entry(course, assignment, s, pages=h)
        for s, h in sorted(by_student.items())])
