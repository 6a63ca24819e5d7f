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
    if not done:
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
    return paths
