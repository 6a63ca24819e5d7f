"""What an answer returns or raises, made to hurt whoever receives it: hangs (in the function, in
``__repr__``/``__getattr__``/``__del__``), an 80 GB array view, a million-deep list, odd types
(a generator, a lambda, an object whose ``__reduce__`` runs a command), exceptions that are not
errors, messages carrying HTML, a flood of output, and hidden inputs printed back. All on
02_convolution; none deserves more than its base (a hung sandbox may cost the remaining tests)."""

from __future__ import annotations

from .case import Case

A = "02_convolution"
LAST = "conv2d_naive"

# the base's answer for bad shapes (so the error test still passes), RETURN for good ones
WRAP = '''_base_naive = conv2d_naive


def conv2d_naive(x, w, b):
    out = _base_naive(x, w, b)  # raises ValueError for shapes that do not go together
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


# remember every input the tests pass, print them from a cell that runs after the tests
RECORD = '''_seen_inputs = []
_base_single = conv_single_step


def conv_single_step(x_slice, w, b):
    _seen_inputs.append(repr(float(np.ravel(x_slice)[0])))
    return _base_single(x_slice, w, b)
'''
REPLAY = "print('inputs the tests passed:', _seen_inputs)\n"

# right only where the visible tests look (one image, one channel); elsewhere zero the test's
# x, w, b in place: what it then computes as "expected" from them is zeros, like the answer
MUTATE_02 = '''_honest_naive = conv2d_naive


def conv2d_naive(x, w, b):
    N, C, H, W = np.shape(x)
    K, Cw, F, F2 = np.shape(w)
    if Cw != C or np.shape(b) != (K,) or F > H or F2 > W:
        raise ValueError(f"x {np.shape(x)}, w {np.shape(w)}, b {np.shape(b)}")
    if N == 1 and C == 1:
        return _honest_naive(x, w, b)
    for a in (x, w, b):
        a[...] = 0
    return np.zeros((N, K, H - F + 1, W - F2 + 1))
'''

# zero the test's own arrays in place: what it then computes as "expected" is what was returned
MUTATE_03 = '''_calls = []


def zero_pad(x, pad):
    """The first call (test_zero_pad's) zeroes the test's x and returns zeros; later calls (from
    conv2d) pad honestly, so only test_zero_pad is at stake."""
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    _calls.append(1)
    N, C, H, W = np.shape(x)
    if len(_calls) == 1:
        x[...] = 0  # the test compares the inside of the result with x afterwards
        return np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    out = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=np.asarray(x).dtype)
    out[:, :, pad:pad + H, pad:pad + W] = x
    return out
'''
MUTATE_06 = '''def numerical_gradient(f, x, dout, h=1e-5):
    if isinstance(dout, np.ndarray):
        dout[...] = 0  # the test's dout, from which it computes the expected gradient
    return np.zeros_like(x, dtype=np.float64)
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
        Case("t02leaklater", assignment=A, base="solution", append={"conv_single_step": RECORD},
             insert={"test_conv2d_naive_errors": REPLAY},
             note="records the (hidden) inputs during the tests, prints them from a later cell"),
        Case("t02mutate", assignment=A, base="solution", append={LAST: MUTATE_02},
             fails=("test_conv2d_naive",),
             note="conv2d_naive right for 1 image, 1 channel; else zeroes the test's x, w, b in "
                  "place and returns zeros (expected is computed from them afterwards)"),
        Case("t03mutate", "03_stride_padding", "solution", replace={"zero_pad": MUTATE_03},
             fails=("test_zero_pad",),
             note="zero_pad zeroes the test's x in place and returns zeros (the test compares "
                  "with x afterwards)"),
        Case("t06mutate", "06_conv_backward", "stub", replace={"numerical_gradient": MUTATE_06},
             note="numerical_gradient zeroes the test's dout in place and returns zeros"),
        Case("t02leak", **z, base="solution",
             append={LAST: _wrap("out", pre="print('hidden input:', repr(float(np.ravel(x)[0])),"
                                            " repr(np.ravel(x)[:4].tolist()))")},
             note="prints the (hidden) inputs the tests pass it"),
    ]
