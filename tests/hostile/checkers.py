"""Tricks on the checks themselves: rebinding, code and defaults swaps, trace hooks, and returned
objects that read ``expected`` out of the checker's frame. All on 02_convolution's zeros answers:
each deserves what the zeros student gets."""

from __future__ import annotations

from .case import Case

A = "02_convolution"
LAST = "conv2d_naive"  # the last answer cell: what is appended there runs before every test

REBIND = "check_close = check_shape = check_raises = lambda *a, **k: None\n"

CODE_SWAP = """import cnnlab.grading as _g
import cnnlab.grading.checks as _c

for _f in (_g.check_close, _g.check_shape, _g.check_raises, _c._fail):
    _f.__code__ = (lambda *a, **k: None).__code__
"""

DEFAULTS_SWAP = """check_close.__defaults__ = (1e300, 1e300, None, "anything")
check_raises.__kwdefaults__ = {**check_raises.__kwdefaults__, "exception": BaseException}
"""

# a trace hook that, inside each check, replaces what the student returned by what is expected
SETTRACE = '''import sys as _sys
import threading as _th


def _tracer(frame, event, arg):
    if frame.f_code.co_name in ("check_close", "check_shape"):
        return _line
    return None


def _line(frame, event, arg):
    if event == "line" and "expected" in frame.f_locals:
        loc = frame.f_locals
        if frame.f_code.co_name == "check_close":
            loc["got"] = loc["expected"]
        elif not isinstance(loc.get("got"), tuple):
            loc["got"] = tuple(loc["expected"])
        import ctypes
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return _line


_sys.settrace(_tracer)
_th.settrace(_tracer)
'''

# what a test compares an answer with is in the checker's frame: read it from there
FRAME_READER = '''import sys as _sys
import inspect as _inspect
import numpy as _np


def _expected_from_frames(how):
    if how == "getframe":
        f = _sys._getframe(1)
    elif how == "inspect":
        f = _inspect.currentframe().f_back
    else:  # another thread's view of this one
        import threading as _th
        f = _sys._current_frames()[_th.get_ident()]
    while f is not None:
        if "expected" in f.f_locals and f.f_code.co_name.startswith("check_"):
            return f.f_locals["expected"]
        f = f.f_back
    return 0.0


class Liar:
    """Whatever the checker expects, it is."""

    def __init__(self, how):
        self.how = how

    def __array__(self, dtype=None, copy=None):
        return _np.asarray(_expected_from_frames(self.how), dtype=dtype)

    def __float__(self):
        return float(_np.asarray(_expected_from_frames(self.how)).ravel()[0])

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

    def __len__(self):
        return len(_np.atleast_1d(_expected_from_frames(self.how)))

    @property
    def shape(self):
        e = _expected_from_frames(self.how)
        return tuple(e) if isinstance(e, tuple) else _np.shape(e)

    def __getitem__(self, index):
        return self


def conv_single_step(x_slice, w, b):
    if _np.shape(x_slice) != _np.shape(w):
        raise ValueError(f"x_slice {_np.shape(x_slice)} and w {_np.shape(w)} differ")
    return Liar(HOW)


def conv2d_naive(x, w, b):
    N, C, H, W = _np.shape(x)
    K, Cw, F, F2 = _np.shape(w)
    if Cw != C or _np.shape(b) != (K,) or F > H or F2 > W:
        raise ValueError("shapes do not go together")
    return Liar(HOW)
'''

# an ndarray subclass whose ufuncs say every difference is zero and whose shape is what is asked
SUBCLASS = '''import numpy as _np
import sys as _sys


class Zero(_np.ndarray):
    """Zeros whose arithmetic always agrees and whose shape is what the caller expects."""

    def __array_finalize__(self, obj):
        f = _sys._getframe(1)
        while f is not None and "expected" not in f.f_locals:
            f = f.f_back
        if f is not None:
            try:
                self[...] = _np.broadcast_to(_np.asarray(f.f_locals["expected"]), self.shape)
            except Exception:
                pass

    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        if ufunc.__name__ in ("subtract", "absolute", "greater", "isnan", "isinf",
                              "not_equal", "logical_or"):
            shape = _np.broadcast_shapes(*(_np.shape(i) for i in inputs))
            return _np.zeros(shape, dtype=bool if ufunc.__name__ != "subtract" else float)
        plain = [i.view(_np.ndarray) if isinstance(i, Zero) else i for i in inputs]
        return getattr(ufunc, method)(*plain, **kw)

    def __float__(self):
        f = _sys._getframe(1)
        while f is not None and "expected" not in f.f_locals:
            f = f.f_back
        return float(f.f_locals["expected"]) if f is not None else 0.0


_plain_single, _plain_naive = conv_single_step, conv2d_naive


def conv_single_step(x_slice, w, b):
    _plain_single(x_slice, w, b)  # raises as asked
    return _np.zeros(()).view(Zero)


def conv2d_naive(x, w, b):
    return _plain_naive(x, w, b).view(Zero)
'''


def cases() -> list[Case]:
    z = dict(assignment=A, base="zeros")
    return [
        Case("t02rebind", **z, append={LAST: REBIND},
             note="check_close = check_shape = check_raises = lambda *a, **k: None"),
        Case("t02codeswap", **z, append={LAST: CODE_SWAP},
             note="check_close/check_shape/check_raises/_fail.__code__ = a no-op's code"),
        Case("t02defaults", **z, append={LAST: DEFAULTS_SWAP},
             note="check_close.__defaults__ tolerances 1e300, check_raises.__kwdefaults__"),
        Case("t02settrace", **z, append={LAST: SETTRACE},
             note="sys.settrace hook writes `expected` into the check's `got`"),
        Case("t02frame", **z, append={LAST: FRAME_READER.replace("HOW", '"getframe"')},
             note="returned object's __array__/__float__/shape read `expected` (sys._getframe)"),
        Case("t02inspect", **z, append={LAST: FRAME_READER.replace("HOW", '"inspect"')},
             note="returned object reads `expected` through inspect.currentframe"),
        Case("t02curframes", **z, append={LAST: FRAME_READER.replace("HOW", '"threads"')},
             note="returned object reads `expected` through sys._current_frames"),
        Case("t02subclass", **z, append={LAST: SUBCLASS},
             note="ndarray subclass: lying __array_ufunc__, __array_finalize__ copies expected"),
    ]
