"""Instructor tools on top of nbgrader: release, collect, autograde (parallel, sandboxed),
feedback, export and a class report. The ``cnnlab`` command (``cnnlab/cli.py``) drives them.

Importing this package is cheap on purpose: the student's side of the grader starts inside the
sandbox from ``cnnlab.instructor.runner.student`` and must not pay for nbgrader's imports.
"""
