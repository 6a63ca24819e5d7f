"""Instructor tools on top of nbgrader: release, collect, autograde (parallel, sandboxed),
feedback, export and a class report. The ``cnnlab`` command (``cnnlab/cli.py``) drives them.

Importing this package is cheap on purpose: the student's side of the grader starts inside the
sandbox from ``cnnlab.instructor.runner.student`` and must not pay for nbgrader's imports.
"""

import sys

# nbformat imports jsonschema, which loads the optional IRI format checker `rfc3987_syntax` when
# it is installed (jupyter-events pulls it in); that module builds a Lark grammar at import: about
# 1.8 s in every grading process (the command, the forkserver, each Dask worker) on a 2-core
# machine. nbformat's schemas use no "format" keyword, so the instructor's processes go without
# it (jsonschema skips the checker when the import fails). One already imported is kept.
sys.modules.setdefault("rfc3987_syntax", None)
