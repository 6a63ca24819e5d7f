"""The typed messages of trusted grading, and the by-value codec between grader and sandbox.

Between processes of the grader (the parent, a worker, a Dask task):

* ``Settings``: the limits of one grading run (the CLI's options), the sandbox's import policy;
* ``Job``: one submission to grade: its notebook bytes, the instructor's source notebooks;
* ``Verdict``: one graded cell's outcome; ``Result``: a whole submission's verdicts.

Each has explicit ``to_json``/``from_json``; all are plain picklable data.

Between the grader and one sandbox (``encode``/``decode``), values cross **by value** only:
None, bool, int, float, complex, str, bytes, tuples, lists, dicts of these, NumPy arrays and
scalars (``.npy``, ``allow_pickle=False``, no object dtype), torch tensors (as arrays); every
other object of the sandbox crosses as a *handle* (an id the sandbox keeps; see ``proxy.py``), a
function of the grader as a *callback* id (call-only). A frame is one JSON document, then the
binary blobs it refers to::

    [4-byte big-endian JSON length][JSON][blob 0][blob 1]...    blob i: [8-byte length][bytes]

``decode`` treats its input as hostile: sizes are checked before anything is allocated, nesting
is limited, anything that is not one of the forms above raises ``ProtocolError``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np

MAX_DEPTH = 64
TRUNCATED = "[output truncated by the grader]"
_LEN4, _LEN8 = struct.Struct(">I"), struct.Struct(">Q")

#: exception types that cross from the sandbox as themselves; any other becomes its nearest
#: base class in this list (a student's ``class MyError(ValueError)`` arrives as ValueError)
EXCEPTIONS = (
    "ArithmeticError", "AssertionError", "AttributeError", "BufferError", "EOFError",
    "Exception", "FloatingPointError", "ImportError", "IndexError", "KeyError", "LookupError",
    "MemoryError", "ModuleNotFoundError", "NameError", "NotImplementedError", "OSError",
    "OverflowError", "RecursionError", "RuntimeError", "StopIteration", "TimeoutError",
    "TypeError", "UnboundLocalError", "ValueError", "ZeroDivisionError", "PermissionError",
    "FileNotFoundError", "IsADirectoryError", "UnicodeError", "IndentationError", "SyntaxError",
)


class ProtocolError(Exception):
    """Bytes from the sandbox that are not a valid message (the sandbox is then given up)."""


# --------------------------------------------------------------------------------------------
# Messages between processes of the grader


@dataclass(frozen=True)
class Settings:
    """Limits of one grading run, and what the sandbox lets a student's code import.

    Args:
        timeout: seconds a cell (a student cell, or a test with its calls) may run.
        importable: packages a student's code may import while graded (the sandbox hides the
            rest of the course environment; the standard library is always there).
        mem_mb, cpu_s, nproc, fsize_mb, scratch_mb: the sandbox's limits (see ``sandbox.Policy``).
        max_output_chars: output text kept per cell for the feedback notebook.
        max_frame_mb: the largest message accepted from a sandbox.
        deadline: seconds for a whole submission; past it, grading stops and the submission is
            recorded as not graded (0, flagged).
        unsafe_no_sandbox: run student code as a plain process (the instructor's explicit
            choice where bubblewrap does not exist, e.g. macOS).
    """

    timeout: float = 180.0
    importable: tuple[str, ...] = ("numpy",)
    mem_mb: int = 4096
    cpu_s: int = 1800
    nproc: int = 64
    fsize_mb: int = 64
    scratch_mb: int = 256
    max_output_chars: int = 20_000
    max_frame_mb: int = 256
    deadline: float | None = None
    unsafe_no_sandbox: bool = False

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Settings:
        d = dict(d)
        d["importable"] = tuple(d.get("importable", ()))
        return cls(**d)


@dataclass(frozen=True)
class Job:
    """One submission to grade.

    Args:
        student, assignment: who and what.
        submission: notebook name (no ``.ipynb``) -> the submitted file's bytes.
        source: notebook name -> the instructor's source notebook (tests and locked cells).
        release: notebook name -> the released student notebook (what "unchanged" means).
        settings: the run's limits.
    """

    student: str
    assignment: str
    submission: dict[str, bytes]
    source: dict[str, bytes]
    release: dict[str, bytes]
    settings: Settings = field(default_factory=Settings)

    def to_json(self) -> dict:
        enc = {k: _b64(v) for k, v in self.submission.items()}
        return {"student": self.student, "assignment": self.assignment, "submission": enc,
                "source": {k: _b64(v) for k, v in self.source.items()},
                "release": {k: _b64(v) for k, v in self.release.items()},
                "settings": self.settings.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> Job:
        return cls(d["student"], d["assignment"],
                   {k: _unb64(v) for k, v in d["submission"].items()},
                   {k: _unb64(v) for k, v in d["source"].items()},
                   {k: _unb64(v) for k, v in d["release"].items()},
                   Settings.from_json(d["settings"]))


@dataclass(frozen=True)
class Verdict:
    """The grader's decision on one graded cell.

    Args:
        notebook, cell: where (notebook name, nbgrader grade id).
        max_points: what the cell is worth.
        points: what it scored; None when a person must grade it.
        message: why it failed (the check's message), or "" when it passed.
        needs_manual: a manually graded cell (a written answer).
    """

    notebook: str
    cell: str
    max_points: float
    points: float | None
    message: str = ""
    needs_manual: bool = False
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.points is not None and self.points >= self.max_points

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Verdict:
        return cls(**d)


@dataclass(frozen=True)
class Result:
    """A graded submission: one verdict per graded cell, what was noticed, the feedback notebooks.

    Args:
        student, assignment: the job this answers (the parent checks both).
        verdicts: one per graded cell of every notebook.
        flags: what the grader noticed (edited locked cells, from-scratch rules, a dead sandbox).
        notebooks: notebook name -> the autograded notebook the grader built (text outputs only,
            hidden tests removed), for feedback and the formgrader.
        seconds: wall time of the whole submission.
        cell_seconds: grade id (or "notebook/cell N") -> seconds.
        unsafe: graded without a sandbox.
        error: set when the submission could not be graded at all.
        cpu_seconds: CPU time of the grading process and its sandboxes for this submission.
    """

    student: str
    assignment: str
    verdicts: list[Verdict]
    flags: list[str]
    notebooks: dict[str, bytes]
    seconds: float
    cell_seconds: dict[str, float] = field(default_factory=dict)
    unsafe: bool = False
    error: str | None = None
    cpu_seconds: float = 0.0

    def to_json(self) -> dict:
        return {"student": self.student, "assignment": self.assignment,
                "cpu_seconds": self.cpu_seconds,
                "verdicts": [v.to_json() for v in self.verdicts], "flags": list(self.flags),
                "notebooks": {k: _b64(v) for k, v in self.notebooks.items()},
                "seconds": self.seconds, "cell_seconds": dict(self.cell_seconds),
                "unsafe": self.unsafe, "error": self.error}

    @classmethod
    def from_json(cls, d: dict) -> Result:
        return cls(d["student"], d["assignment"], [Verdict.from_json(v) for v in d["verdicts"]],
                   list(d["flags"]), {k: _unb64(v) for k, v in d["notebooks"].items()},
                   float(d["seconds"]), dict(d.get("cell_seconds", {})), bool(d["unsafe"]),
                   d.get("error"), float(d.get("cpu_seconds", 0.0)))


def _b64(b: bytes) -> str:
    import base64

    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    import base64

    return base64.b64decode(s.encode("ascii"), validate=True)


# --------------------------------------------------------------------------------------------
# The by-value codec between the grader and a sandbox


@dataclass(frozen=True)
class Handle:
    """A sandbox object the other side refers to by id (what ``proxy.Remote`` wraps).

    ``kind``: ``"object"`` or ``"function"``; ``cls``: the class's dotted names, most derived
    first (as the sandbox reports them: only used to pick an allow-listed torch class)."""

    id: int
    kind: str
    name: str
    cls: tuple[str, ...]


@dataclass(frozen=True)
class Ref:
    """The grader sending a handle back: "your object ``id``"."""

    id: int


@dataclass(frozen=True)
class CallbackRef:
    """A function of the grader the sandbox may call (by value), nothing else."""

    id: int


@dataclass(frozen=True)
class RemoteError:
    """An exception that crossed: an allow-listed builtin type name and its message."""

    type: str
    message: str

    def exception(self) -> BaseException:
        import builtins

        cls = getattr(builtins, self.type) if self.type in EXCEPTIONS else Exception
        return cls(self.message)


def exception_type_name(exc: BaseException) -> str:
    """The nearest allow-listed builtin type of ``exc`` (by its class's MRO)."""
    import builtins

    for klass in type(exc).__mro__:
        if klass.__name__ in EXCEPTIONS and getattr(builtins, klass.__name__, None) is klass:
            return klass.__name__
    return "Exception"


class Encoder:
    """Turns a value into a JSON tree plus blobs. ``export(obj)`` decides what an object that is
    not plain data becomes (a ``Handle`` in the sandbox, a ``CallbackRef``/``Ref`` in the grader);
    ``arrays`` collects the NumPy arrays met (for copy-back of in-place changes)."""

    def __init__(self, export=None):
        self.blobs: list[bytes] = []
        self.arrays: list[np.ndarray] = []
        self.export = export

    def blob(self, b: bytes) -> int:
        self.blobs.append(bytes(b))
        return len(self.blobs) - 1

    def tree(self, v, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
        t = type(v)
        if v is None or t in (bool, int, str):
            return v
        if t is float:
            return v if math.isfinite(v) else {"f": repr(v)}
        if t is complex:
            return {"j": [self.tree(v.real), self.tree(v.imag)]}
        if t in (bytes, bytearray):
            return {"b": self.blob(v)}
        if t is list:
            return [self.tree(x, depth + 1) for x in v]
        if t is tuple:
            return {"t": [self.tree(x, depth + 1) for x in v]}
        if t is dict:
            return {"d": [[self.tree(k, depth + 1), self.tree(x, depth + 1)] for k, x in v.items()]}
        if t is np.ndarray:
            if v.dtype.hasobject:
                raise TypeError("a NumPy array of Python objects cannot cross by value")
            self.arrays.append(v)
            return {"a": self.blob(_npy(v)), "i": len(self.arrays) - 1}
        if isinstance(v, np.generic) and t.__module__ == "numpy":
            if isinstance(v, np.object_):
                raise TypeError("a NumPy object scalar cannot cross by value")
            return {"s": self.blob(_npy(np.asarray(v)))}
        if isinstance(v, (Handle, Ref, CallbackRef)):
            return _ref_tree(v)
        torch = _torch_if_loaded()
        if torch is not None and isinstance(v, torch.Size):
            return {"t": [int(x) for x in v]}
        if torch is not None and type(v) is torch.Tensor:
            arr = v.detach().cpu().resolve_conj().resolve_neg()
            return {"p": self.blob(_npy(arr.numpy())), "g": bool(v.requires_grad)}
        if torch is not None and type(v) is torch.device:
            return {"dv": str(v)}
        if torch is not None and type(v) is torch.dtype:
            return {"dt": str(v).removeprefix("torch.")}
        if self.export is not None:  # a reference, or a plain stand-in (an array subclass)
            r = self.export(v)
            if isinstance(r, (Handle, Ref, CallbackRef)):
                return _ref_tree(r)
            if type(r) is not t:
                return self.tree(r, depth + 1)
        raise TypeError(f"a {t.__name__} cannot cross by value")

    def frame(self, message: dict) -> bytes:
        body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        parts = [_LEN4.pack(len(body)), body]
        for b in self.blobs:
            parts += [_LEN8.pack(len(b)), b]
        return b"".join(parts)


def _ref_tree(v) -> dict:
    if isinstance(v, Handle):
        return {"h": [v.id, v.kind, v.name, list(v.cls)]}
    if isinstance(v, Ref):
        return {"r": v.id}
    if isinstance(v, CallbackRef):
        return {"c": v.id}
    raise TypeError(f"export returned {type(v).__name__}, not a reference")


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _torch_if_loaded():
    import sys

    return sys.modules.get("torch")


def split_frame(data: bytes) -> tuple[dict, list[bytes]]:
    """The JSON message and the blobs of one frame; ``ProtocolError`` for anything malformed."""
    if len(data) < 4:
        raise ProtocolError("a frame shorter than its header")
    (n,) = _LEN4.unpack_from(data)
    if n > len(data) - 4:
        raise ProtocolError("the JSON part runs past the frame")
    try:
        message = json.loads(data[4:4 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"the message is not JSON ({type(e).__name__})") from None
    if not isinstance(message, dict):
        raise ProtocolError("the message is not a JSON object")
    blobs, pos = [], 4 + n
    while pos < len(data):
        if pos + 8 > len(data):
            raise ProtocolError("a blob header runs past the frame")
        (m,) = _LEN8.unpack_from(data, pos)
        if m > len(data) - pos - 8:
            raise ProtocolError("a blob runs past the frame")
        blobs.append(data[pos + 8:pos + 8 + m])
        pos += 8 + m
    return message, blobs


class Decoder:
    """Turns a JSON tree plus blobs back into a value. ``resolve(ref)`` maps references (a
    ``Handle`` to a proxy in the grader; a ``Ref``/``CallbackRef`` to an object in the sandbox);
    ``allow`` names the reference kinds this side accepts; ``arrays`` collects decoded arrays by
    their sender's index (for copy-back)."""

    def __init__(self, blobs: list[bytes], resolve=None, allow: tuple[str, ...] = ()):
        self.blobs, self.resolve, self.allow = blobs, resolve, allow
        self.arrays: dict[int, np.ndarray] = {}

    def _blob(self, i) -> bytes:
        if type(i) is not int or not 0 <= i < len(self.blobs):
            raise ProtocolError(f"no blob {i!r}")
        return self.blobs[i]

    def value(self, t, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
        if t is None or type(t) in (bool, int, str, float):
            return t
        if type(t) is list:
            return [self.value(x, depth + 1) for x in t]
        if type(t) is not dict or not 1 <= len(t) <= 2:
            raise ProtocolError(f"not a value: {type(t).__name__}")
        ((tag, body), *rest) = t.items()
        if tag == "t" and type(body) is list and not rest:
            return tuple(self.value(x, depth + 1) for x in body)
        if tag == "d" and type(body) is list and not rest:
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("a dict entry is not a [key, value] pair")
                key = self.value(pair[0], depth + 1)
                try:
                    out[key] = self.value(pair[1], depth + 1)
                except TypeError:
                    raise ProtocolError("an unhashable dict key") from None
            return out
        if tag == "f" and body in ("nan", "inf", "-inf") and not rest:
            return float(body)
        if tag == "j" and type(body) is list and len(body) == 2 and not rest:
            re, im = body
            if type(re) not in (int, float) or type(im) not in (int, float):
                raise ProtocolError("a complex number of non-numbers")
            return complex(re, im)
        if tag == "b" and not rest:
            return self._blob(body)
        if tag == "a":
            arr = _load_npy(self._blob(body))
            if rest:
                ((k, idx),) = rest
                if k != "i" or type(idx) is not int:
                    raise ProtocolError("a malformed array")
                self.arrays[idx] = arr
            return arr
        if tag == "s" and not rest:
            arr = _load_npy(self._blob(body))
            if arr.ndim != 0:
                raise ProtocolError("a NumPy scalar that is not 0-dimensional")
            return arr[()]
        if tag == "p":
            arr = _load_npy(self._blob(body))
            grad = bool(rest and rest[0] == ("g", True))
            torch = _torch_if_loaded()
            if torch is None:
                return arr
            tensor = torch.from_numpy(arr.copy() if not arr.flags.writeable else arr)
            if grad and tensor.is_floating_point():
                tensor.requires_grad_(True)
            return tensor
        if tag in ("dv", "dt") and type(body) is str and len(body) < 40 and not rest:
            torch = _torch_if_loaded()
            if torch is None:
                return body
            if tag == "dv":
                try:
                    return torch.device(body)
                except RuntimeError:
                    raise ProtocolError(f"not a torch device: {body!r}") from None
            dtype = getattr(torch, body, None) if body.isidentifier() else None
            if not isinstance(dtype, torch.dtype):
                raise ProtocolError(f"not a torch dtype: {body!r}")
            return dtype
        if tag in ("h", "r", "c") and tag in self.allow and not rest:
            return self.resolve(_parse_ref(tag, body))
        raise ProtocolError(f"not a value: tag {tag!r}")


def _parse_ref(tag, body):
    if tag == "h":
        if (type(body) is not list or len(body) != 4 or type(body[0]) is not int
                or body[1] not in ("object", "function") or type(body[2]) is not str
                or type(body[3]) is not list or not all(type(c) is str for c in body[3])):
            raise ProtocolError("a malformed handle")
        return Handle(body[0], body[1], body[2][:200], tuple(c[:200] for c in body[3][:32]))
    if type(body) is not int:
        raise ProtocolError("a malformed reference")
    return Ref(body) if tag == "r" else CallbackRef(body)


def _load_npy(b: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(b), allow_pickle=False)
    except Exception as e:
        raise ProtocolError(f"not a .npy array ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
        raise ProtocolError("a .npy array of Python objects")
    return arr


def encode(message: dict, values: dict, export=None) -> tuple[bytes, list[np.ndarray]]:
    """One frame: ``message`` (JSON-safe) with each of ``values`` encoded under its key.
    Returns the frame and the arrays met, in the order their index says."""
    enc = Encoder(export)
    msg = dict(message)
    for k, v in values.items():
        msg[k] = enc.tree(v)
    return enc.frame(msg), enc.arrays


def value_of(message: dict, key: str, blobs: list[bytes], resolve=None, allow=()):
    """Decode one encoded value of a message (``ProtocolError`` if missing or malformed)."""
    if key not in message:
        raise ProtocolError(f"the message has no {key!r}")
    return Decoder(blobs, resolve, allow).value(message[key])
