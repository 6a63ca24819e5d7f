"""Instructor tools on top of nbgrader: release, collect, autograde (parallel, sandboxed),
feedback, export and a class report. The ``cnnlab`` command (``cnnlab/cli.py``) drives them.

Importing this package is cheap on purpose: the sandboxed grading kernel starts from
``cnnlab.instructor.sandbox_kernel`` and must not pay for nbgrader's imports.
"""
