"""What an answer returns or raises, made to hurt whoever receives it: hangs (in the function, in
``__repr__``/``__getattr__``/``__del__``), an 80 GB array view, a million-deep list, odd types
(a generator, a lambda, an object whose ``__reduce__`` runs a command), exceptions that are not
errors, messages carrying HTML, a flood of output, and hidden inputs printed back. All on
02_convolution; none deserves more than its base (a hung sandbox may cost the remaining tests)."""

from __future__ import annotations

from .case import Case

A = "02_convolution"
LAST = "conv2d_naive"

# the zeros answer for bad shapes (so the error test still passes), RETURN for good ones
WRAP = '''_zeros_naive = conv2d_naive


def conv2d_naive(x, w, b):
    out = _zeros_naive(x, w, b)  # raises ValueError for shapes that do not go together
    PRE
    return RETURN
'''


def _wrap(ret: str, pre: str = "pass", head: str = "") -> str:
    return head + WRAP.replace("RETURN", ret).replace("PRE", pre)


STICKY = '''class Sticky:
    """Hangs whatever is asked of it."""

    def _hang(self, *a, **k):
        while True:
            pass

    __repr__ = __str__ = __float__ = __len__ = __array__ = __del__ = __bool__ = _hang

    def __getattr__(self, name):
        self._hang()


'''

REDUCE = '''class Payload:
    """Runs a command wherever it is unpickled."""

    def __reduce__(self):
        import os
        return (os.system, ("touch '$root/pwned-reduce-$mark'",))


'''


def cases() -> list[Case]:
    z = dict(assignment=A, at_most=True)
    return [
        Case("t02hang", **z, base="partial", replace={LAST: "def conv2d_naive(x, w, b):\n"
                                                             "    while True:\n        pass\n"},
             flag="time", note="an endless loop in the function the test calls"),
        Case("t02sticky", **z, base="zeros", append={LAST: _wrap("Sticky()", head=STICKY)},
             note="returns an object whose __repr__, __getattr__, __array__ and __del__ hang"),
        Case("t02huge", **z, base="zeros",
             append={LAST: _wrap("np.broadcast_to(np.float64(0.0), (10 ** 5, 10 ** 5))")},
             note="returns an 80 GB float64 array (a broadcast view: 8 bytes here)"),
        Case("t02nested", **z, base="zeros",
             append={LAST: _wrap("deep", pre="deep = []\n    for _ in range(10 ** 6):\n"
                                            "        deep = [deep]")},
             note="returns a list nested a million deep"),
        Case("t02generator", **z, base="zeros",
             append={LAST: _wrap("(v for v in out.ravel())")},
             note="returns a generator"),
        Case("t02lambda", **z, base="zeros", append={LAST: _wrap("lambda *a: out")},
             note="returns a lambda"),
        Case("t02reduce", **z, base="zeros", append={LAST: _wrap("Payload()", head=REDUCE)},
             note="returns an object whose __reduce__ runs `touch` (pickle would obey)"),
        Case("t02keyboard", **z, base="zeros",
             append={LAST: _wrap("out", pre="raise KeyboardInterrupt('stop the grader')")},
             note="raises KeyboardInterrupt where a value is expected"),
        Case("t02sysexit", **z, base="zeros",
             append={LAST: _wrap("out", pre="raise SystemExit(0)")},
             note="raises SystemExit where a value is expected"),
        Case("t02bigmessage", **z, base="zeros",
             append={LAST: _wrap("out", pre="raise ValueError('x' * 10 ** 8)")},
             note="raises ValueError with a 100 MB message"),
        Case("t02html", **z, base="zeros",
             append={LAST: _wrap("out", pre="raise ValueError('</pre><script>alert(\"$mark\")"
                                            "</script><h1>8/8</h1>')")},
             note="raises ValueError whose message is HTML (script, a fake score)"),
        Case("t02flood", **z, base="zeros",
             append={LAST: _wrap("out", pre="for _ in range(10 ** 6):\n"
                                            "        print('y' * 99)")},
             flag="truncated", note="prints 100 MB during the test's call"),
        Case("t02leak", **z, base="zeros",
             append={LAST: _wrap("out", pre="print('hidden input:', repr(float(np.ravel(x)[0])),"
                                            " repr(np.ravel(x)[:4].tolist()))")},
             note="prints the (hidden) inputs the tests pass it"),
    ]
