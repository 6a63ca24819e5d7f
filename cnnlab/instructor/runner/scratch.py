""""From scratch", decided by the grader from the submitted source (nothing a student can turn off).

``check_from_scratch(f, ...)`` in a test cell, with ``f`` a handle on the student's function,
asks ``Analysis.violations``: starting from the top-level names the handle stands for, it follows
every name those definitions use (the student's helpers, the values of assignments, decorators,
default arguments, class bodies and methods) and judges each dotted name they reach through an
import (``np.lib.stride_tricks.as_strided``, ``from numpy import convolve as c``) with the
test's own ``forbid``/``allow`` lists (``cnnlab.grading.scratch``'s rules, applied here to the
object the name resolves to in the grader's process). Beyond the forbidden list, a from-scratch
answer may import only the standard library's plain modules (``ALLOWED_STDLIB``) and the
packages of the assignment's import policy, and may not use what a static reading cannot follow:

* ``getattr`` with a computed name, ``setattr``, ``vars``, ``globals``, ``eval``, ``exec``,
  ``compile``, ``__import__`` (or any of them as a value);
* dunder attributes (``x.__dict__``, ``np.__getattribute__``) other than ``ALLOWED_DUNDERS``;
* a module used as a value (``m = np.lib``), which hides what is called through it;
* a library's private names (``np.lib._stride_tricks_impl``: a leading underscore), and the
  standard library's lookups by string (``typing.get_type_hints`` evaluates string annotations,
  ``string.Formatter().get_field`` reads attributes by name);
* when NumPy's stride tricks are forbidden, ``np.ndarray(shape, dtype, buffer, ...)`` on an
  existing buffer (``as_strided`` under another name), by keyword or by position;
* a function that rebinds a top-level name (``global conv2d_naive``) is part of that name's
  definition, so the answer that replaces the honest one is judged too;
* top-level code that replaces a library's attribute (``np.sum = np.convolve``) counts against
  every function that uses it; ``setattr``, ``exec`` and the like at the top level against all.

The sandbox adds the other half: a package outside the assignment's policy cannot be imported at
all (torch, SciPy and ``cnnlab``'s reference layers in the NumPy assignments).
"""

from __future__ import annotations

import ast
import importlib
import sys
import types

from cnnlab.grading.scratch import _Rules

ALLOWED_STDLIB = frozenset({
    "__future__", "abc", "bisect", "cmath", "collections", "copy", "dataclasses", "decimal",
    "enum", "fractions", "functools", "heapq", "itertools", "math", "numbers", "random", "re",
    "statistics", "string", "textwrap", "time", "typing", "warnings",
})
DYNAMIC = frozenset({"getattr", "setattr", "delattr", "vars", "globals", "locals", "eval",
                     "exec", "compile", "__import__", "breakpoint"})
# the standard library's own ways to look a name up by string (an eval in other clothes)
DYNAMIC_PATHS = frozenset({
    "typing.get_type_hints", "typing.ForwardRef", "typing.evaluate_forward_ref",
    "string.Formatter", "functools.singledispatch",
})
ALLOWED_DUNDERS = frozenset({"__init__", "__call__", "__name__", "__doc__", "__len__",
                             "__getitem__", "__iter__", "__next__", "__repr__", "__str__",
                             "__class__", "__module__", "__qualname__"})


def _chain(node) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; ``getattr(a, "b")`` -> ["a", "b"]; else None."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "getattr" and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            parts.append(node.args[1].value)
            node = node.args[0]
        else:
            break
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


class Analysis:
    """The submitted notebook's top-level definitions, ready to be judged.

    Args:
        student: the sources of the cells the student could edit, in order.
        context: the sources of the instructor's cells that also run in the sandbox (the setup
            cell's ``import numpy as np``), for the aliases they define.
        importable: the assignment's import policy (top-level packages or dotted modules).
    """

    def __init__(self, student: list[str], context: list[str] = (), importable=("numpy",)):
        self.bindings: dict[str, list[ast.AST]] = {}
        self.imports: dict[str, str] = {}  # local name -> dotted path it was imported as
        self.stars: list[str] = []
        self.taint: list[str] = []  # module-level code that may change any library function
        self.replaced: set[str] = set()  # library attributes module-level code replaces
        self.importable = tuple(importable)
        for source in context:
            tree = _parse(source)
            if tree is not None:
                self._collect(tree.body, student=False)
        for source in student:
            tree = _parse(source)
            if tree is not None:
                self._collect(tree.body, student=True)

    # -- collecting ----------------------------------------------------------------------------
    def _collect(self, body, student: bool) -> None:
        for node in body:
            if student:
                self._globals(node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if student:
                    self.bindings.setdefault(node.name, []).append(node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self._imports(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and student:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                            self.bindings.setdefault(n.id, []).append(node)
                        elif isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(
                                n.ctx, ast.Store):
                            self._store(n)
                if node.value is not None:
                    self._top_level(node.value)
            elif student:
                for n in ast.walk(node):  # for/if/with/try: defs inside count as top level
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        self.bindings.setdefault(n.name, []).append(n)
                    elif isinstance(n, (ast.Import, ast.ImportFrom)):
                        self._imports(n)
                    elif isinstance(n, (ast.Name,)) and isinstance(n.ctx, ast.Store):
                        self.bindings.setdefault(n.id, []).append(node)
                    elif isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(
                            n.ctx, (ast.Store, ast.Del)):
                        self._store(n)
                self._top_level(node)

    def _globals(self, node) -> None:
        """A function that says ``global name`` and assigns it defines ``name`` too."""
        for fn in ast.walk(node):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            for g in ast.walk(fn):
                if isinstance(g, ast.Global):
                    for name in g.names:
                        self.bindings.setdefault(name, []).append(fn)

    def _imports(self, node) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self.imports[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    self.imports[top] = top
        elif node.module and node.level == 0:
            for a in node.names:
                if a.name == "*":
                    self.stars.append(node.module)
                else:
                    self.imports[a.asname or a.name] = f"{node.module}.{a.name}"

    def _store(self, target) -> None:
        chain = _chain(target.value if isinstance(target, ast.Subscript) else target)
        if chain and chain[0] in self.imports and chain[0] not in self.bindings:
            self.replaced.add(self.imports[chain[0]] + "".join(f".{c}" for c in chain[1:]))

    def _top_level(self, node) -> None:
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in (
                    "setattr", "delattr", "exec", "eval", "compile", "__import__", "globals",
                    "vars"):
                self.taint.append(f"your notebook calls {n.func.id}() at the top level")

    # -- judging -------------------------------------------------------------------------------
    def violations(self, names, forbid, allow=()) -> list[str]:
        """What the definitions of ``names`` (and all they use) do that the rules forbid."""
        rules = _Rules(tuple(forbid), tuple(allow))
        allowed_roots = tuple(p for p in (*ALLOWED_STDLIB, *self.importable) if p not in forbid)
        found = list(self.taint)
        seen, todo = set(), [n for n in names if n in self.bindings]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in self.bindings[name]:
                for what, dep in self._judge(node, rules, allowed_roots):
                    if dep is not None:
                        todo.append(dep)
                    else:
                        found.append(f"your {name} {what}")
        return list(dict.fromkeys(found))

    def _judge(self, node, rules, allowed_roots):
        """(violation, None) and (None, student name used) pairs for one definition."""
        inner = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute):
                inner.add(id(n.value))
            if isinstance(n, ast.Call) and _chain(n) is not None and isinstance(n.func, ast.Name) \
                    and n.func.id == "getattr":
                inner.add(id(n.func))
                inner.add(id(n.args[0]))
        for n in ast.walk(node):
            if isinstance(n, (ast.Import, ast.ImportFrom)) and n is not node:
                yield from self._judge_import(n, rules, allowed_roots)
            elif isinstance(n, ast.Attribute) and _is_dunder(n.attr) and (
                    n.attr not in ALLOWED_DUNDERS):
                yield f"uses {n.attr}, which a from-scratch check cannot follow", None
            elif isinstance(n, ast.Name) and n.id in DYNAMIC and id(n) not in inner:
                yield f"uses {n.id}(), which a from-scratch check cannot follow", None
            elif isinstance(n, ast.Name) and _is_dunder(n.id) and n.id not in ALLOWED_DUNDERS:
                yield f"uses {n.id}, which a from-scratch check cannot follow", None
            elif isinstance(n, ast.Call) and _strided_forbidden(rules) and (
                    any(k.arg in ("strides", "buffer") for k in n.keywords)
                    or (len(n.args) >= 3 and self._is_ndarray(n.func))):
                yield ("builds a strided view (np.ndarray on a buffer, strides=), as "
                       "as_strided does"), None
            if id(n) in inner or not isinstance(n, (ast.Attribute, ast.Name, ast.Call)):
                continue
            chain = _chain(n)
            if chain is None or (isinstance(n, ast.Call) and chain == [getattr(n.func, "id", "")]):
                continue
            root = chain[0]
            if root in self.bindings:
                yield None, root
            elif root in self.imports:
                yield from self._judge_path(
                    self.imports[root] + "".join(f".{c}" for c in chain[1:]), rules,
                    allowed_roots)
            elif self.stars and isinstance(n, ast.Name) and root not in dir(__builtins__):
                for module in self.stars:
                    yield from self._judge_path(f"{module}.{'.'.join(chain)}", rules,
                                                allowed_roots)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        # an assignment's targets are bound, its value is what counts (walked above)

    def _is_ndarray(self, func) -> bool:
        """Whether ``func`` (a call's callee) names ``numpy.ndarray``, under any alias."""
        chain = _chain(func)
        if not chain or chain[0] not in self.imports:
            return False
        dotted = self.imports[chain[0]] + "".join(f".{c}" for c in chain[1:])
        return _resolve(dotted) is _resolve("numpy.ndarray")

    def _judge_import(self, n, rules, allowed_roots):
        mods = [a.name for a in n.names] if isinstance(n, ast.Import) else (
            [f"{n.module}.{a.name}" for a in n.names] if n.module and n.level == 0 else [])
        for m in mods:
            yield from self._judge_path(m, rules, allowed_roots, verb="imports")

    def _judge_path(self, dotted: str, rules, allowed_roots, verb: str = "calls"):
        private = [p for p in dotted.split(".") if p.startswith("_") and not _is_dunder(p)]
        if private and not dotted.startswith("__future__"):
            yield (f"{verb} {dotted}, a library's private name ({private[0]}), which a "
                   "from-scratch check cannot follow"), None
            return
        if any(dotted == d or dotted.startswith(d + ".") for d in DYNAMIC_PATHS):
            yield (f"{verb} {dotted}, which looks names up by string (a from-scratch check "
                   "cannot follow it)"), None
            return
        if dotted in self.replaced:
            yield f"calls {dotted}, which your notebook replaces at the top level", None
            return
        if not any(dotted == p or dotted.startswith(p + ".") for p in allowed_roots):
            policy = ", ".join(sorted(self.importable))
            yield (f"{verb} {dotted} (a from-scratch answer may use only {policy} and plain "
                   "standard-library modules)"), None
            return
        obj = _resolve(dotted)
        if obj is _MISSING:
            return
        bad = rules.forbidden_name(obj)
        if bad is None and isinstance(obj, types.ModuleType):
            if rules._module_forbidden(obj.__name__):
                bad = obj.__name__
            elif verb == "calls" and _holds_forbidden(obj.__name__, rules):
                yield (f"uses the module {dotted} as a value (a from-scratch check cannot "
                       "follow what is called through it)"), None
                return
        if bad:
            yield f"{verb} {bad}", None


_MISSING = object()


def _resolve(dotted: str):
    """The object a dotted name means in the grader's process (modules of allowed roots only)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        module = sys.modules.get(modname)
        if module is None:
            try:
                module = importlib.import_module(modname)
            except Exception:
                continue
        obj = module
        for attr in parts[i:]:
            try:
                obj = getattr(obj, attr)
            except Exception:
                return _MISSING
        return obj
    return _MISSING


def _holds_forbidden(modname: str, rules) -> bool:
    prefix = modname + "."
    return any(m.startswith(prefix) for m in rules.modules) or any(
        isinstance(name, str) and name.startswith(prefix) for name in rules.objects.values())


def _strided_forbidden(rules) -> bool:
    return any("stride_tricks" in name for name in rules.objects.values())


def _parse(source: str) -> ast.Module | None:
    from .student import _magic_free

    try:
        return ast.parse(_magic_free(source))
    except SyntaxError:
        return None
