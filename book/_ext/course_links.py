"""Sphinx extension of the course book: links to the graded exercises.

``{exercise}`02_convolution``` renders as a link to
``<repository>/tree/<branch>/exercises/02_convolution``, where repository and branch are the
``repository:`` settings of ``_config.yml`` (one place: a fork
changes only that). An id that is not one of the course's assignments is a build warning, and so
fails the ``-W`` build.
"""

from __future__ import annotations

from docutils import nodes

ASSIGNMENTS = (
    "01_fc_vs_conv",
    "02_convolution",
    "03_stride_padding",
    "04_one_by_one",
    "05_pooling",
    "06_conv_backward",
    "07_im2col",
    "08_architectures",
    "09_training",
)


def exercise_url(config, assignment: str) -> str:
    """The web address of ``exercises/<assignment>/`` on the course repository."""
    options = config.html_theme_options or {}
    url = str(options.get("repository_url", "")).rstrip("/")
    branch = options.get("repository_branch", "main") or "main"
    if not url:
        raise ValueError("the exercise links need `repository: url:` in _config.yml")
    return f"{url}/tree/{branch}/exercises/{assignment}"


def exercise_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{exercise}`<id>``` -> a link "exercise <id>" to the student notebook's folder."""
    assignment = text.strip()
    if assignment not in ASSIGNMENTS:
        msg = inliner.reporter.warning(
            f"unknown exercise id {assignment!r}: expected one of {', '.join(ASSIGNMENTS)}",
            line=lineno,
        )
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    config = inliner.document.settings.env.config
    try:
        url = exercise_url(config, assignment)
    except ValueError as err:
        msg = inliner.reporter.warning(str(err), line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    ref = nodes.reference(rawtext, "", refuri=url, classes=["exercise-link"])
    ref += nodes.literal(assignment, f"exercises/{assignment}")
    return [ref], []


def setup(app):
    app.add_role("exercise", exercise_role)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
