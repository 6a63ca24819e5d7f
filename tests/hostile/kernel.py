"""Tricks on the kernel that runs the notebook: replaced ``run_cell``/``do_execute``, input
transformers, swallowed tracebacks, and outputs that make nbgrader's ``determine_grade`` stop early
(it reads a cell's outputs in order and stops at the first ``execute_result``). All on
02_convolution's zeros answers: each deserves what the zeros student gets."""

from __future__ import annotations

from .case import Case

A = "02_convolution"
LAST = "conv2d_naive"

RUN_CELL = '''_ip = get_ipython()
_run_cell, _run_cell_async = _ip.run_cell, _ip.run_cell_async


def _skip_tests(raw_cell):
    return "pass" if "check_" in raw_cell and "def " not in raw_cell else raw_cell


_ip.run_cell = lambda raw_cell, *a, **k: _run_cell(_skip_tests(raw_cell), *a, **k)


async def _async(raw_cell, *a, **k):
    return await _run_cell_async(_skip_tests(raw_cell), *a, **k)


_ip.run_cell_async = _async
'''

DO_EXECUTE = '''_kernel = get_ipython().kernel
_do_execute = _kernel.do_execute


async def _do(code, silent, store_history=True, user_expressions=None, allow_stdin=False,
              **kw):
    if "check_" in code and "def " not in code:
        code = "pass"
    return await _do_execute(code, silent, store_history, user_expressions, allow_stdin, **kw)


_kernel.do_execute = _do
'''

TRANSFORMER = '''def _to_pass(lines):
    return ["pass\\n"] if any("check_" in line for line in lines) and not any(
        line.startswith("def ") for line in lines) else lines


get_ipython().input_transformers_post.append(_to_pass)
get_ipython().input_transformers_cleanup.append(_to_pass)
'''

SHOWTRACEBACK = '''get_ipython().showtraceback = lambda *a, **k: None
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
'''

# inside the answer, before the checker fails: an output nbgrader reads as "full credit"
EARLY_OUTPUT = '''_zeros_naive, _zeros_single = conv2d_naive, conv_single_step


def conv_single_step(x_slice, w, b):
    EMIT
    return _zeros_single(x_slice, w, b)


def conv2d_naive(x, w, b):
    EMIT
    return _zeros_naive(x, w, b)
'''


def cases() -> list[Case]:
    z = dict(assignment=A, base="zeros")

    def early(student, emit, note, **kw):
        return Case(student, **z, append={LAST: EARLY_OUTPUT.replace("EMIT", emit)}, note=note,
                    **kw)

    return [
        Case("t02runcell", **z, append={LAST: RUN_CELL},
             note="get_ipython().run_cell/run_cell_async turn test cells into `pass`"),
        Case("t02doexecute", **z, append={LAST: DO_EXECUTE},
             note="the kernel's do_execute replaced: test cells become `pass`"),
        Case("t02transformer", **z, append={LAST: TRANSFORMER},
             note="an IPython input transformer turns every test cell into `pass`"),
        Case("t02showtb", **z, append={LAST: SHOWTRACEBACK},
             note="showtraceback/set_custom_exc swallow the failing check's error output"),
        early("t02displayhook", 'import sys; sys.displayhook("ok")',
              'sys.displayhook("ok") before the check fails (first execute_result wins)'),
        early("t02displaynum", 'import sys; sys.displayhook(1e9)',
              "sys.displayhook(1e9): a number nbgrader reads as partial credit"),
        early("t02display", "from IPython.display import display; display(5)",
              "IPython.display.display(5) before the check fails (no IPython: may raise)",
              at_most=True),
        early("t02printfail", 'print("8 / 8 points: all tests passed")',
              "print a pass message, then fail"),
        early("t02stderr", 'import sys; print("oops", file=sys.stderr)',
              "writes to stderr during the test (nbgrader scores such a cell 0): no gain",
              at_most=True),
    ]
