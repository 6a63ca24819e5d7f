"""Sphinx extension of the course book: links to the graded exercises.

``{exercise}`02_convolution``` renders as a download of the student notebook
``exercises/02_convolution/02_convolution.ipynb`` (Sphinx copies it into the built book's
``_downloads/``), followed by "open in JupyterHub" when the course sets
``course_jupyterhub_url`` (``sphinx: config:`` in ``_config.yml``): a link to
``<hub>/hub/user-redirect/lab/tree/<id>/<id>.ipynb``, where nbgrader's *fetch* puts the notebook.

The known ids are the assignments in ``solutions/`` (a folder ``solutions/<id>/`` holding
``<id>.ipynb``), the same rule the tests use. An unknown id is a build warning, and so fails the
``-W`` build.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx import addnodes

ROOT = Path(__file__).resolve().parents[2]


def course_assignments(root: Path = ROOT) -> tuple[str, ...]:
    """The assignment ids: folders ``solutions/<id>/`` that hold ``<id>.ipynb``, sorted."""
    solutions = root / "solutions"
    if not solutions.is_dir():
        return ()
    return tuple(sorted(p.name for p in solutions.iterdir() if (p / f"{p.name}.ipynb").is_file()))


ASSIGNMENTS = course_assignments()


def student_notebook(assignment: str) -> str:
    """The student notebook of ``assignment``, as a path from the book's source root."""
    return f"/exercises/{assignment}/{assignment}.ipynb"


def hub_url(hub: str, assignment: str) -> str:
    """The "open in JupyterHub" address of ``assignment``'s notebook on the course hub."""
    return f"{hub.rstrip('/')}/hub/user-redirect/lab/tree/{assignment}/{assignment}.ipynb"


def exercise_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{exercise}`<id>``` -> a download of the student notebook (+ a JupyterHub link)."""
    assignment = text.strip()
    if assignment not in ASSIGNMENTS:
        msg = inliner.reporter.warning(
            f"unknown exercise id {assignment!r}: expected one of {', '.join(ASSIGNMENTS)}",
            line=lineno,
        )
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    env = inliner.document.settings.env
    download = addnodes.download_reference(
        rawtext,
        "",
        refdoc=env.docname,
        reftarget=student_notebook(assignment),
        refexplicit=True,
        refwarn=True,
        classes=["exercise-link"],
    )
    download += nodes.literal(assignment, f"{assignment}.ipynb")
    result = [download]
    hub = env.config.course_jupyterhub_url
    if hub:
        link = nodes.reference(
            "", "open in JupyterHub", refuri=hub_url(hub, assignment), classes=["exercise-hub-link"]
        )
        result += [nodes.Text(" ("), link, nodes.Text(")")]
    return result, []


def setup(app):
    app.add_config_value("course_jupyterhub_url", "", "html", types=[str])
    app.add_role("exercise", exercise_role)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
