"""How a failed check looks in a notebook: its message, not a wall of frames through checks.py.

When ``cnnlab.grading`` is imported inside IPython (the setup cell of every exercise), the
kernel's shell gets a custom exception handler for the graders' own failures (:class:`CheckFailed`,
``FromScratchError``, ``TamperError``). The handler shows ``CheckFailed: <message>`` and nothing
else. It is still an ``error`` output, sent the way IPython sends every traceback, so nbgrader
scores the cell 0 exactly as before; every other exception keeps IPython's full traceback.

Outside IPython (a plain Python process, pytest) nothing is installed and IPython is not imported.
"""

from __future__ import annotations

import sys

RED, RESET = "\x1b[0;31m", "\x1b[0m"


def short_traceback(etype: type[BaseException], value: BaseException) -> list[str]:
    """The structured traceback of a failed check: one entry, the name and the message.

    >>> short_traceback(AssertionError, AssertionError("x: got 1, expected 2."))
    ['\\x1b[0;31mAssertionError\\x1b[0m: x: got 1, expected 2.']
    """
    return [f"{RED}{etype.__name__}{RESET}: {value}"]


def _handler(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: show the short traceback, return it."""
    stb = short_traceback(etype, value)
    shell._showtraceback(etype, value, stb)  # ipykernel sends it as an `error` output
    return stb


def install(exceptions: tuple[type[BaseException], ...]) -> bool:
    """Register the short display for ``exceptions`` in the running IPython shell, if any.

    Returns True when a shell was found. Other custom handlers the shell had are replaced only for
    a shell that had none (IPython keeps one handler per shell).
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    current = tuple(getattr(shell, "custom_exceptions", ()) or ())
    if current and not set(current) <= set(exceptions):
        return False  # someone else's handler: leave it
    shell.set_custom_exc(tuple(exceptions), _handler)
    return True
