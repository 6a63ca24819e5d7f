"""Detect "from scratch" violations: an exercise whose function calls a reference fails.

Two independent checks, both on by default in :func:`check_from_scratch`:

1. **Static**: the function's source is parsed and every global name and dotted attribute it uses
   (``cnnlab.nn.conv2d``, ``np.convolve``, ``F.conv2d`` where ``F`` is ``torch.nn.functional``, a
   name imported with ``from scipy.signal import convolve2d as c``), its default arguments, closure
   variables and the ``import`` statements in its body are resolved against the notebook's globals.
   Helper functions the student wrote are followed recursively.
2. **Dynamic**: while the function runs, a profiler hook (``sys.setprofile``) watches every call. A
   call into a forbidden function (however it was reached: an alias, ``getattr``, a helper) stops
   the run with :class:`FromScratchError`, and is recorded so that catching the error does not help.

What is forbidden is decided per exercise with a tuple of names: a module name forbids everything
defined in it (``"torch"``, ``"scipy.signal"``, ``"cnnlab"``), a dotted function name forbids that
function (``"numpy.convolve"``). ``cnnlab.grading`` itself is never forbidden. ``allow`` lists the
exceptions (``allow=("cnnlab.shapes",)`` lets a convolution use the reference ``conv_output_size``).

>>> out = check_from_scratch(my_conv2d, x, w, b, name="conv2d_naive",
...                          chapter="book/02-convolution-layer.md")  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import sys
import textwrap
import types

__all__ = [
    "FromScratchError",
    "REFERENCE",
    "CONV_LIBRARIES",
    "WINDOW_TRICKS",
    "DEFAULT_FORBIDDEN",
    "static_violations",
    "from_scratch",
    "check_from_scratch",
]

#: the course's own reference implementations
REFERENCE = ("cnnlab",)
#: other libraries' convolutions: PyTorch (all of it), SciPy's signal/ndimage, NumPy's 1-D ones
CONV_LIBRARIES = ("torch", "scipy.signal", "scipy.ndimage", "numpy.convolve", "numpy.correlate")
#: NumPy's strided views, which turn a convolution into one einsum
WINDOW_TRICKS = (
    "numpy.lib.stride_tricks.sliding_window_view",
    "numpy.lib.stride_tricks.as_strided",
)
DEFAULT_FORBIDDEN = REFERENCE + CONV_LIBRARIES + WINDOW_TRICKS

_NEVER_FORBIDDEN = "cnnlab.grading"
_setprofile = sys.setprofile
_getprofile = sys.getprofile


class FromScratchError(AssertionError):
    """The student's function used something the exercise asks them to write themselves."""


# --------------------------------------------------------------------------------------------
# What a name in the forbidden list means


class _Rules:
    """The forbidden modules (by name and by folder) and functions (by identity and code object)."""

    def __init__(self, forbid, allow):
        self.modules: list[str] = []  # dotted module prefixes
        self.folders: list[str] = []  # their source folders (or files), for the profiler
        self.objects: dict[int, str] = {}  # id(function) -> dotted name
        self.codes: dict[types.CodeType, str] = {}  # code object -> dotted name
        self.keep: list = []  # keep resolved objects alive so ids stay valid
        self.allow_modules: list[str] = [_NEVER_FORBIDDEN]
        self.allow_folders: list[str] = []
        self.allow_codes: set[types.CodeType] = set()
        self.allow_objects: set[int] = set()
        for name in forbid:
            self._add(name, forbidden=True)
        for name in (*allow, _NEVER_FORBIDDEN):
            self._add(name, forbidden=False)

    def _add(self, name: str, forbidden: bool) -> None:
        kind, obj = _resolve(name)
        if kind == "module":
            folder = _module_location(name)
            if forbidden:
                self.modules.append(name)
                if folder:
                    self.folders.append(folder)
            else:
                self.allow_modules.append(name)
                if folder:
                    self.allow_folders.append(folder)
        elif kind == "object":
            self.keep.append(obj)
            code = _code_of(obj)
            if forbidden:
                self.objects[id(obj)] = name
                if code is not None:
                    self.codes[code] = name
            else:
                self.allow_objects.add(id(obj))
                if code is not None:
                    self.allow_codes.add(code)
        # kind == "missing": a library that is not installed cannot be called

    # -- classification --------------------------------------------------------------------
    def _module_forbidden(self, modname: str | None) -> bool:
        if not modname:
            return False
        if any(_under(modname, a) for a in self.allow_modules):
            return False
        return any(_under(modname, m) for m in self.modules)

    def forbidden_name(self, obj) -> str | None:
        """The dotted name under which ``obj`` is forbidden, or None."""
        try:
            if id(obj) in self.allow_objects:
                return None
            if id(obj) in self.objects:
                return self.objects[id(obj)]
            if isinstance(obj, functools.partial):
                return self.forbidden_name(obj.func)
            if isinstance(obj, types.ModuleType):
                return obj.__name__ if self._module_forbidden(obj.__name__) else None
            impl = getattr(obj, "_implementation", None)  # NumPy's array-function dispatchers
            if impl is not None and id(impl) in self.objects:
                return self.objects[id(impl)]
            code = _code_of(obj)
            if code is not None and code in self.codes:
                return self.codes[code]
            if code is not None and code in self.allow_codes:
                return None
            modname = getattr(obj, "__module__", None)
            if isinstance(modname, str) and self._module_forbidden(modname):
                return _public_name(modname, getattr(obj, "__name__", "?"))
        except Exception:  # an exotic object (a proxy, a broken __getattr__): not a reference
            return None
        return None

    def forbidden_frame(self, code: types.CodeType, modname: str | None) -> str | None:
        if code in self.allow_codes:
            return None
        if code in self.codes:
            return self.codes[code]
        if modname and self._module_forbidden(modname):
            return _public_name(modname, code.co_qualname)
        fname = code.co_filename
        if any(fname.startswith(f) for f in self.allow_folders):
            return None
        for folder in self.folders:
            if fname.startswith(folder):
                return _public_name(modname or os.path.basename(fname), code.co_qualname)
        return None


def _public_name(modname: str, name: str) -> str:
    """The shortest public path of ``modname.name``: cnnlab.nn.conv.conv2d -> cnnlab.nn.conv2d."""
    module = sys.modules.get(modname)
    target = getattr(module, name, None) if module is not None and "." not in name else None
    if target is not None:
        parts = modname.split(".")
        for i in range(1, len(parts)):
            parent = sys.modules.get(".".join(parts[:i]))
            if parent is not None and getattr(parent, name, None) is target:
                return f"{'.'.join(parts[:i])}.{name}"
    return f"{modname}.{name}"


def _under(modname: str, prefix: str) -> bool:
    return modname == prefix or modname.startswith(prefix + ".")


def _code_of(obj) -> types.CodeType | None:
    obj = getattr(obj, "_implementation", obj)
    code = getattr(obj, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _module_location(name: str) -> str | None:
    """The folder of a package (with a trailing separator) or the file of a module, unimported."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return os.path.join(list(spec.submodule_search_locations)[0], "")
    return spec.origin


def _resolve(name: str):
    """("module", None) | ("object", obj) | ("missing", None) for a dotted name."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            spec = importlib.util.find_spec(modname)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        if i == len(parts):
            return "module", None
        module = importlib.import_module(modname)
        obj = module
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return "missing", None
        if isinstance(obj, types.ModuleType):
            return "module", None
        return "object", obj
    return "missing", None


# --------------------------------------------------------------------------------------------
# Static check


def _source_tree(func) -> ast.AST | None:
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return None
    try:
        return ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None


def _attribute_chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None if the chain does not start from a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _walk_chain(root, attrs: list[str]):
    """Follow attributes from ``root`` while they lead through modules (and one step past)."""
    obj = root
    for attr in attrs:
        if not isinstance(obj, (types.ModuleType, type)):
            break
        try:
            obj = getattr(obj, attr)
        except Exception:
            break
    return obj


def static_violations(func, forbid=DEFAULT_FORBIDDEN, allow=()) -> list[str]:
    """Descriptions of forbidden things ``func`` refers to in its source, helpers included."""
    rules = _Rules(forbid, allow)
    found: list[str] = []
    _static(func, rules, found, seen=set())
    return list(dict.fromkeys(found))


def _static(func, rules: _Rules, found: list[str], seen: set) -> None:
    func = inspect.unwrap(func) if callable(func) else func
    if id(func) in seen:
        return
    seen.add(id(func))
    name = getattr(func, "__name__", "function")
    where = f"your {name}"

    if isinstance(func, type):  # a class written in the notebook: its bases and its methods
        for base in func.__mro__[1:]:
            bad = rules.forbidden_name(base)
            if bad:
                found.append(f"{where} subclasses {bad}")
                break
        for member in vars(func).values():
            member = getattr(member, "__func__", member)  # staticmethod / classmethod
            if isinstance(member, property):
                member = member.fget
            if _is_student_function(member):
                _static(member, rules, found, seen)
        return

    # defaults, keyword defaults and closure cells hold objects directly
    held = list(getattr(func, "__defaults__", None) or ())
    held += list((getattr(func, "__kwdefaults__", None) or {}).values())
    for cell in getattr(func, "__closure__", None) or ():
        try:
            held.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    for obj in held:
        bad = rules.forbidden_name(obj)
        if bad:
            found.append(f"{where} holds a reference to {bad}")
        elif _is_student_function(obj):
            _static(obj, rules, found, seen)

    tree = _source_tree(func)
    code = getattr(func, "__code__", None)
    if tree is None or code is None:
        return
    local = set(code.co_varnames) | set(code.co_cellvars)
    g = getattr(func, "__globals__", {})
    builtins = g.get("__builtins__", {})
    if isinstance(builtins, types.ModuleType):
        builtins = vars(builtins)

    # names that start an attribute chain are judged with the whole chain (cnnlab.nn.conv2d),
    # a bare module name (getattr(cnnlab.nn, "conv2d")) on its own
    chained = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if id(node) in chained:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if rules._module_forbidden(alias.name):
                    found.append(f"{where} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                kind, obj = _resolve(full)
                bad = rules.forbidden_name(obj) if kind == "object" else None
                if bad or rules._module_forbidden(full if kind == "module" else node.module):
                    if not (kind == "object" and bad is None and id(obj) in rules.allow_objects):
                        found.append(f"{where} imports {bad or full}")
        elif isinstance(node, (ast.Attribute, ast.Name)) and isinstance(
            getattr(node, "ctx", None), ast.Load
        ):
            chain = _attribute_chain(node)
            if chain is None or chain[0] in local:
                continue
            if chain[0] in g:
                root = g[chain[0]]
            elif chain[0] in builtins:
                continue
            else:
                continue
            obj = _walk_chain(root, chain[1:])
            bad = rules.forbidden_name(obj)
            if bad and not isinstance(obj, types.ModuleType):
                found.append(f"{where} calls {bad}")
            elif bad and len(chain) == 1:
                found.append(f"{where} uses the module {bad}")
            elif _is_student_function(obj):
                _static(obj, rules, found, seen)


def _is_student_function(obj) -> bool:
    """A function (or class) written in the notebook, not in an installed package."""
    if isinstance(obj, type):
        return getattr(obj, "__module__", None) == "__main__"
    if not isinstance(obj, types.FunctionType):
        return False
    module = getattr(obj, "__module__", "") or ""
    return (
        module == "__main__"
        or not module
        or module not in sys.modules
        or (not _in_installed_code(obj.__code__.co_filename))
    )


def _in_installed_code(filename: str) -> bool:
    prefixes = [os.path.join(p, "") for p in (sys.prefix, sys.base_prefix)]
    cnnlab_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")
    return any(filename.startswith(p) for p in [*prefixes, cnnlab_dir])


# --------------------------------------------------------------------------------------------
# Dynamic check


class _Watch:
    """A profiler hook that stops the run at the first call into a forbidden function."""

    def __init__(self, rules: _Rules, name: str, chapter: str | None):
        self.rules = rules
        self.name = name
        self.chapter = chapter
        self.calls: list[str] = []
        self._frames: dict[types.CodeType, str | None] = {}
        self._modules: dict[str, bool] = {}

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code in self._frames:
                bad = self._frames[code]
            else:
                bad = self.rules.forbidden_frame(code, frame.f_globals.get("__name__"))
                self._frames[code] = bad
        elif event == "c_call":
            # builtins are called often (len, ndarray methods): decide by module name, cached
            if id(arg) in self.rules.objects:
                bad = self.rules.objects[id(arg)]
            else:
                module = getattr(arg, "__module__", None)
                if not isinstance(module, str):
                    return
                if module not in self._modules:
                    self._modules[module] = self.rules._module_forbidden(module)
                if not self._modules[module] or id(arg) in self.rules.allow_objects:
                    return
                bad = _public_name(module, getattr(arg, "__name__", "?"))
        else:
            return
        if bad:
            self.calls.append(bad)
            text = _message(self.name, [f"your {self.name} calls {bad}"], self.chapter)
            raise FromScratchError(text)


def _message(name: str, violations: list[str], chapter: str | None) -> str:
    lines = "; ".join(dict.fromkeys(violations))
    text = (
        f"{lines}: this exercise asks you to write {name} from scratch (NumPy arithmetic, loops)."
    )
    if chapter:
        text += f" See {chapter}."
    return text


@contextlib.contextmanager
def from_scratch(name: str = "your function", forbid=DEFAULT_FORBIDDEN, allow=(), chapter=None):
    """Inside this block, any call into a forbidden function raises :class:`FromScratchError`.

    The block also fails on exit if a forbidden call happened and the student's code caught the
    error. Use :func:`check_from_scratch` for the usual case (static check + run + this block).
    """
    rules = _Rules(forbid, allow)
    watch = _Watch(rules, name, chapter)
    previous = _getprofile()
    _setprofile(watch)
    try:
        yield watch
    finally:
        _setprofile(previous)
    if watch.calls:
        calls = [f"your {name} calls {c}" for c in watch.calls]
        raise FromScratchError(_message(name, calls, chapter))


def check_from_scratch(
    func,
    *args,
    name: str | None = None,
    forbid=DEFAULT_FORBIDDEN,
    allow=(),
    chapter: str | None = None,
    static: bool = True,
    **kwargs,
):
    """Run ``func(*args, **kwargs)`` and return its result, failing if it uses forbidden code.

    Args:
        func: the student's function.
        name: how messages call it (default: its ``__name__``).
        forbid: module names and dotted function names it may not use (default: cnnlab, PyTorch,
            SciPy's convolutions, ``np.convolve``/``np.correlate``, NumPy's strided views).
        allow: exceptions to ``forbid`` (e.g. ``("cnnlab.shapes",)``).
        chapter: the book chapter the message points to.
        static: also inspect the source (default True).

    Raises:
        FromScratchError: with the message "your conv2d calls cnnlab.nn.conv2d: this exercise asks
            you to write conv2d from scratch ...".
    """
    name = name or getattr(func, "__name__", "your function")
    remote = getattr(type(func), "_cnnlab_from_scratch", None)
    if remote is not None:  # graded by cnnlab: the function runs in a sandbox, judged by source
        found = remote(func, forbid, allow)
        if found:
            raise FromScratchError(_message(name, found, chapter))
        return func(*args, **kwargs)
    if static:
        found = static_violations(func, forbid, allow)
        if found:
            raise FromScratchError(_message(name, found, chapter))
    with from_scratch(name, forbid, allow, chapter):
        result = func(*args, **kwargs)
    return result
