"""From-scratch bypasses: the answer calls the reference (or a forbidden library) in a way the
static reading and the profiler miss. Each deserves what the same call made openly gets (the
``plaincheat`` base: the solution with the reference called plainly; ``plainnumpy`` for NumPy's
forbidden functions)."""

from __future__ import annotations

from .case import Case

SIG = "def conv2d_naive(x, w, b):\n"
# the answers' own shape checks (the error test needs them), and the window product they end with
SHAPES = ("    x, w, b = (np.asarray(a, dtype=float) for a in (x, w, b))\n"
          "    if w.shape[1] != x.shape[1] or b.shape != (w.shape[0],) or "
          "w.shape[2] > x.shape[2] or w.shape[3] > x.shape[3]:\n"
          "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n")
EINSUM = "    return np.einsum('nchwij,kcij->nkhw', win, w) + b[None, :, None, None]\n"
# cnnlab.nn.conv2d, reached without a name the static check can resolve
HIDDEN_REF = "getattr(__import__('cnn' + 'lab.nn', fromlist=['x']), 'conv' + '2d')"

BYPASSES_02 = {
    "t02setprofile": ("sys.setprofile(None) inside the answer, then the reference",
                      SIG + "    import sys\n    sys.setprofile(None)\n"
                      f"    return {HIDDEN_REF}(x, w, b)\n"),
    "t02thread": ("the reference called in a thread (the profiler watches one thread)",
                  SIG + "    import threading\n    box = []\n"
                  f"    t = threading.Thread(target=lambda: box.append({HIDDEN_REF}(x, w, b)))\n"
                  "    t.start()\n    t.join()\n    return box[0]\n"),
    "t02renamed": ("a renamed copy of cnnlab (its files copied to mylab/) imported",
                   "import os, shutil, sys, tempfile\n"
                   "import cnnlab.grading as _g\n"
                   "_dst = tempfile.mkdtemp()\n"
                   "shutil.copytree(os.path.dirname(os.path.dirname(_g.__file__)),\n"
                   "                os.path.join(_dst, 'mylab'))\n"
                   "for _root, _, _files in os.walk(_dst):\n"
                   "    for _n in _files:\n"
                   "        if _n.endswith('.py'):\n"
                   "            _p = os.path.join(_root, _n)\n"
                   "            _t = open(_p).read().replace('cnnlab', 'mylab')\n"
                   "            open(_p, 'w').write(_t)\n"
                   "sys.path.insert(0, _dst)\n"
                   "import mylab.nn\n\n" + SIG + "    return mylab.nn.conv2d(x, w, b)\n"),
    "t02bypath": ("importlib by file path: the reference's conv module loaded under another name",
                  "import importlib.util, os\n"
                  "import cnnlab.grading as _g\n"
                  "_p = os.path.join(os.path.dirname(os.path.dirname(_g.__file__)), 'nn', "
                  "'conv.py')\n"
                  "_spec = importlib.util.spec_from_file_location('mine', _p)\n"
                  "mine = importlib.util.module_from_spec(_spec)\n"
                  "_spec.loader.exec_module(mine)\n\n" + SIG +
                  "    return mine.conv2d(x, w, b)\n"),
    "t02torch": ("__import__('tor' + 'ch'): torch's conv2d behind a computed name",
                 SIG + "    t = __import__('tor' + 'ch')\n"
                 "    f = getattr(t.nn, 'func' + 'tional')\n"
                 "    x, w, b = (t.from_numpy(np.asarray(a, dtype=float)) for a in (x, w, b))\n"
                 "    return f.conv2d(x, w, b).numpy()\n"),
    "t02neverforbidden": ("cnnlab.grading.scratch._NEVER_FORBIDDEN = 'cnnlab'",
                          "import cnnlab.grading.scratch as _s\n_s._NEVER_FORBIDDEN = 'cnnlab'\n"
                          "import cnnlab.nn\n\n" + SIG +
                          "    return cnnlab.nn.conv2d(x, w, b)\n"),
    "t02kwdefaults": ("check_from_scratch.__kwdefaults__['forbid'] = ()",
                      "check_from_scratch.__kwdefaults__['forbid'] = ()\n"
                      "import cnnlab.nn\n\n" + SIG + "    return cnnlab.nn.conv2d(x, w, b)\n"),
    "t02base64": ("exec of a base64 string that defines the answer with the reference",
                  "import base64\nexec(base64.b64decode(" + repr(__import__("base64").b64encode(
                      b"import cnnlab.nn as _n\ndef conv2d_naive(x, w, b):\n"
                      b"    return _n.conv2d(x, w, b)\n").decode()) + "))\n"),
    "t02getattrnp": ("getattr(np, 'corr' + 'elate'): NumPy's forbidden 1-D correlation",
                     SIG + "    corr = getattr(np, 'corr' + 'elate')\n"
                     "    x, w, b = (np.asarray(a, dtype=float) for a in (x, w, b))\n"
                     "    N, C, H, W = x.shape\n    K, Cw, F, F2 = w.shape\n"
                     "    if Cw != C or b.shape != (K,) or F > H or F2 > W:\n"
                     "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n"
                     "    out = np.zeros((N, K, H - F + 1, W - F2 + 1))\n"
                     "    for n in range(N):\n        for k in range(K):\n"
                     "            for i in range(H - F + 1):\n                for c in range(C):\n"
                     "                    for r in range(F):\n"
                     "                        out[n, k, i] += corr(x[n, c, i + r], w[k, c, r], "
                     "'valid')\n"
                     "            out[n, k] += b[k]\n    return out\n"),
    "t02stridetricks": ("np.lib.stride_tricks' sliding_window_view under an alias",
                        SIG + "    view = vars(np.lib.stride_tricks)['sliding_' + 'window_view']\n"
                        "    x, w, b = (np.asarray(a, dtype=float) for a in (x, w, b))\n"
                        "    if w.shape[1] != x.shape[1] or b.shape != (w.shape[0],) or "
                        "w.shape[2] > x.shape[2] or w.shape[3] > x.shape[3]:\n"
                        "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n"
                        "    win = view(x, w.shape[2:], axis=(2, 3))  # (N, C, H', W', F, F)\n"
                        "    return np.einsum('nchwij,kcij->nkhw', win, w) + b[None, :, None, "
                        "None]\n"),
    "t02ndarraystrides": ("a strided window view built with the np.ndarray constructor "
                          "(as_strided without its name)",
                          SIG + "    x, w, b = (np.ascontiguousarray(a, dtype=float) for a in "
                          "(x, w, b))\n"
                          "    N, C, H, W = x.shape\n    K, Cw, F, F2 = w.shape\n"
                          "    if Cw != C or b.shape != (K,) or F > H or F2 > W:\n"
                          "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n"
                          "    s = x.strides\n"
                          "    win = np.ndarray((N, C, H - F + 1, W - F2 + 1, F, F2), "
                          "dtype=x.dtype, buffer=x,\n"
                          "                     strides=(s[0], s[1], s[2], s[3], s[2], s[3]))\n"
                          "    return np.einsum('nchwij,kcij->nkhw', win, w) + b[None, :, None, "
                          "None]\n"),
    "t02ndarraypos": ("np.ndarray(shape, dtype, buffer, offset, strides) with positional "
                      "arguments: a strided window view",
                      SIG + "    x, w, b = (np.ascontiguousarray(a, dtype=float) for a in "
                      "(x, w, b))\n"
                      "    N, C, H, W = x.shape\n    K, Cw, F, F2 = w.shape\n"
                      "    if Cw != C or b.shape != (K,) or F > H or F2 > W:\n"
                      "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n"
                      "    s = x.strides\n"
                      "    win = np.ndarray((N, C, H - F + 1, W - F2 + 1, F, F2), x.dtype, x, 0,"
                      "\n                     (s[0], s[1], s[2], s[3], s[2], s[3]))\n"
                      "    return np.einsum('nchwij,kcij->nkhw', win, w) + b[None, :, None, "
                      "None]\n"),
    "t02typehints": ("sliding_window_view fetched by typing.get_type_hints from a string "
                     "annotation (an eval the static reading does not see)",
                     "import typing\n\n\n"
                     "def _spec(v: 'np.lib.stride_tricks.sliding_window_view'):\n    pass\n\n\n"
                     + SIG + "    view = typing.get_type_hints(_spec)['v']\n"
                     + SHAPES
                     + "    win = view(x, w.shape[2:], axis=(2, 3))\n"
                     + EINSUM),
    "t02globalinstall": ("an honest conv2d_naive, rebound by `global` inside a helper called "
                         "at the top level to one that uses sliding_window_view openly",
                         "ORIGINAL\n\n\ndef _fast(x, w, b):\n"
                         "    x, w, b = (np.asarray(a, dtype=float) for a in (x, w, b))\n"
                         "    if w.shape[1] != x.shape[1] or b.shape != (w.shape[0],) or "
                         "w.shape[2] > x.shape[2] or w.shape[3] > x.shape[3]:\n"
                         "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n"
                         "    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], "
                         "axis=(2, 3))\n"
                         "    return np.einsum('nchwij,kcij->nkhw', win, w) + b[None, :, None, "
                         "None]\n\n\n"
                         "def _install():\n    global conv2d_naive\n    conv2d_naive = _fast\n"
                         "\n\n_install()\n"),
    "t02formatter": ("sliding_window_view fetched by string.Formatter().get_field (attribute "
                     "access by a string)",
                     "import string\n\n\n" + SIG +
                     "    view, _ = string.Formatter().get_field("
                     "'0.lib.stride_tricks.sliding_window_view', (np,), {})\n"
                     + SHAPES
                     + "    win = view(x, w.shape[2:], axis=(2, 3))\n"
                     + EINSUM),
    "t02dummyarray": ("as_strided rebuilt from NumPy's DummyArray and an interface dict "
                      "(x.ctypes.data): no strides= keyword, no forbidden name",
                      SIG + "    x, w, b = (np.ascontiguousarray(a, dtype=float) for a in "
                      "(x, w, b))\n"
                      "    N, C, H, W = x.shape\n    K, Cw, F, F2 = w.shape\n"
                      "    if Cw != C or b.shape != (K,) or F > H or F2 > W:\n"
                      "        raise ValueError(f'x {x.shape}, w {w.shape}, b {b.shape}')\n"
                      "    s = x.strides\n"
                      "    face = {'shape': (N, C, H - F + 1, W - F2 + 1, F, F2), 'typestr': "
                      "x.dtype.str,\n"
                      "            'data': (x.ctypes.data, True), 'version': 3,\n"
                      "            'strides': (s[0], s[1], s[2], s[3], s[2], s[3])}\n"
                      "    win = np.asarray(np.lib._stride_tricks_impl.DummyArray(face, base=x))\n"
                      "    return np.einsum('nchwij,kcij->nkhw', win, w) + b[None, :, None, "
                      "None]\n"),
}
NUMPY_02 = ("t02formatter", "t02dummyarray", "t02getattrnp", "t02stridetricks",
            "t02ndarraystrides", "t02ndarraypos", "t02typehints", "t02globalinstall")

# 03: zero_pad may not call numpy.pad
PAD = ("def zero_pad(x, pad):\n    if pad < 0:\n        raise ValueError(f'pad must be >= 0, "
       "got {pad}')\n")
PAD_CALL = "(np.asarray(x), ((0, 0), (0, 0), (pad, pad), (pad, pad)))"
BYPASSES_03 = {
    "t03thread": ("numpy.pad through getattr, in a thread",
                  PAD + "    import threading\n    box = []\n"
                  f"    t = threading.Thread(target=lambda: box.append(getattr(np, 'p' + 'ad')"
                  f"{PAD_CALL}))\n    t.start()\n    t.join()\n    return box[0]\n"),
    "t03setprofile": ("sys.setprofile(None), then numpy.pad through vars(np)",
                      PAD + "    import sys\n    sys.setprofile(None)\n"
                      f"    return vars(np)['p' + 'ad']{PAD_CALL}\n"),
    "t03sysmodules": ("numpy.pad through sys.modules['numpy'].__dict__",
                      PAD + "    import sys\n"
                      f"    return sys.modules['num' + 'py'].__dict__['p' + 'ad']{PAD_CALL}\n"),
    "t03typehints": ("numpy.pad fetched by typing.get_type_hints from a string annotation",
                     "import typing\n\n\ndef _spec(p: 'np.pad'):\n    pass\n\n\n" + PAD
                     + f"    return typing.get_type_hints(_spec)['p']{PAD_CALL}\n"),
    "t03globalinstall": ("an honest zero_pad, rebound by `global` in a helper to np.pad",
                         "ORIGINAL\n\n\n" + PAD.replace("zero_pad", "_fast")
                         + f"    return np.pad{PAD_CALL}\n\n\n"
                         "def _install():\n    global zero_pad\n    zero_pad = _fast\n\n\n"
                         "_install()\n"),
    "t03formatter": ("numpy.pad fetched by string.Formatter().get_field",
                     "import string\n\n\n" + PAD
                     + f"    return string.Formatter().get_field('0.pad', (np,), {{}})[0]"
                     f"{PAD_CALL}\n"),
    "t03exec": ("numpy.pad inside an exec'd string",
                PAD + "    ns = {'np': np, 'x': x, 'pad': pad}\n"
                f"    exec('out = np.' + 'pad' + '{PAD_CALL}', ns)\n    return ns['out']\n"),
}


# 07: its sandbox may import cnnlab.nn, so only the static reading stands between an answer and
# the reference: rebind both answers to it from a helper the reading does not follow
INSTALL_07 = '''

def _install():
    global im2col, conv_im2col
    import cnnlab.nn as reference_layers
    im2col = reference_layers.im2col
    conv_im2col = reference_layers.conv2d


_install()
'''


def _case(student, assignment, gid, note, code, like):
    """A bypass deserves no more than the open call (a grader may judge the disguise harder:
    code it cannot follow fails every test that checks from scratch)."""
    if code.startswith("ORIGINAL"):  # keep the honest answer, then the trick
        return Case(student, assignment, "solution", note, like=like, flag="from scratch",
                    append={gid: code.removeprefix("ORIGINAL")}, at_most=True)
    return Case(student, assignment, "solution", note, replace={gid: code}, like=like,
                flag="from scratch", at_most=True)


def cases() -> list[Case]:
    out = [_case(s, "02_convolution", "conv2d_naive", note, code,
                 "plainnumpy" if s in NUMPY_02 else "plaincheat")
           for s, (note, code) in BYPASSES_02.items()]
    out += [_case(s, "03_stride_padding", "zero_pad", note, code, "plaincheat")
            for s, (note, code) in BYPASSES_03.items()]
    out.append(_case("t07globalinstall", "07_im2col", "conv_im2col",
                     "honest im2col/conv_im2col, rebound by `global` in a helper to cnnlab.nn's "
                     "(importable in 07's sandbox)", "ORIGINAL" + INSTALL_07, "plaincheat"))
    return out
