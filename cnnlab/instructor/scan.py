"""Read a submission before grading and say what looks wrong (for the report only: the trusted
grader decides the scores, the sandbox confines the code).

* test and read-only cells compared with the released notebook: deleted, edited, duplicated;
* answer cells parsed: a syntax error; code that replaces checkers (``np.allclose = ...``,
  ``setattr(np.testing, ...)``, ``sys.modules[...] = ...``); code that uses the reference package
  ``cnnlab`` in an answer; file access by absolute path or ``..``; processes, ``ctypes``,
  ``builtins``, ``get_ipython``.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import nbformat

from .notebooks import is_solution_cell, nbg

PROTECTED_MODULES = ("numpy", "cnnlab", "torch", "builtins", "sys")
GRADING_KEYS = ("grade", "solution", "locked", "points", "task")  # what decides a cell's role
SUSPECT_MODULES = ("ctypes", "subprocess", "builtins", "importlib", "gc", "inspect")


def _code(source: str) -> str:
    """Python source without IPython magics and shell escapes."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.split("\n"))


def _root(node, aliases):
    """The module an expression like ``np.testing.assert_allclose`` hangs from, or None."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    return None


def _aliases(trees) -> dict[str, str]:
    out = {"np": "numpy", "numpy": "numpy", "cnnlab": "cnnlab", "torch": "torch", "sys": "sys"}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    out[a.asname or a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    out[a.asname or a.name] = node.module.split(".")[0]
    return out


def scan_answer(tree: ast.AST, aliases: dict[str, str], where: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for t in targets:
            if isinstance(t, ast.Attribute | ast.Subscript) and _root(t, aliases) in (
                    PROTECTED_MODULES):
                found.append(f"{where}: replaces {ast.unparse(t)} (checker tampering)")
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else None
            if name in ("setattr", "delattr") and node.args and _root(
                    node.args[0], aliases) in PROTECTED_MODULES:
                found.append(f"{where}: {name}({ast.unparse(node.args[0])}, ...) "
                             "(checker tampering)")
            if name in ("__import__", "get_ipython", "exec", "eval"):
                found.append(f"{where}: calls {name}()")
            if name == "open" and node.args and isinstance(node.args[0], ast.Constant) and (
                    isinstance(node.args[0].value, str)) and (
                    node.args[0].value.startswith("/") or ".." in node.args[0].value):
                found.append(f"{where}: opens {node.args[0].value!r} outside its folder")
            if isinstance(f, ast.Attribute) and _root(f, aliases) == "os" and f.attr in (
                    "system", "popen", "_exit", "kill", "fork"):
                found.append(f"{where}: calls os.{f.attr}()")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                _outside_path(node.value)):
            found.append(f"{where}: refers to the path {node.value[:120]!r} outside its folder "
                         "(reading or writing files there finds nothing: the sandbox hides them)")
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            for m in mods:
                top = m.split(".")[0]
                if top == "cnnlab":
                    found.append(f"{where}: imports the reference package ({m}) in an answer "
                                 "(not from scratch)")
                elif top in SUSPECT_MODULES:
                    found.append(f"{where}: imports {m}")
    return found


def _outside_path(s: str) -> bool:
    """An absolute file path (``/etc/passwd``, not a lone ``/``) or one climbing with ``../``."""
    return (s.startswith("/") and "/" in s[1:] and " " not in s and "\n" not in s) or "../" in s


def scan_notebook(nb, release_nb) -> list[str]:
    flags = []
    ref = {nbg(c)["grade_id"]: c for c in release_nb.cells if nbg(c).get("grade_id")}
    counts = Counter(nbg(c).get("grade_id") for c in nb.cells if nbg(c).get("grade_id"))
    for gid, n in counts.items():
        if n > 1:
            flags.append(f"duplicated cell {gid} ({n} copies; nbgrader keeps the first)")
    seen = {}
    for c in nb.cells:
        gid = nbg(c).get("grade_id")
        if gid and gid not in seen:
            seen[gid] = c
    for gid, rc in ref.items():
        m = nbg(rc)
        if gid in seen:
            changed = [f"{k} {m.get(k)!r} -> {nbg(seen[gid]).get(k)!r}" for k in GRADING_KEYS
                       if nbg(seen[gid]).get(k) != m.get(k)]
            if changed:
                flags.append(f"{gid}: its nbgrader metadata was changed ({', '.join(changed)}); "
                             "the instructor's is used")
        if is_solution_cell(rc):
            if gid not in seen:
                flags.append(f"deleted answer cell {gid}")
            continue
        if gid not in seen:
            kind = "test cell" if m.get("grade") else "read-only cell"
            flags.append(f"deleted {kind} {gid} (restored from the gradebook)")
        elif seen[gid].source.strip() != rc.source.strip():
            kind = "test cell" if m.get("grade") else "read-only cell"
            flags.append(f"edited {kind} {gid} (restored from the gradebook)")
    for gid in seen:
        if gid not in ref:
            flags.append(f"cell with unknown grade id {gid!r}")
    answers = []
    provided = {c.source.strip() for c in release_nb.cells if c.cell_type == "code"}
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or c.source.strip() in provided:
            continue  # code the course itself gave (unchanged) is not the student's
        gid = nbg(c).get("grade_id")
        if gid in ref and not is_solution_cell(ref[gid]):
            continue  # test and read-only cells are replaced by the gradebook's copy
        where = gid or f"cell {i}"
        try:
            answers.append((where, ast.parse(_code(c.source))))
        except SyntaxError as e:
            flags.append(f"{where}: syntax error (line {e.lineno}: {e.msg})")
    aliases = _aliases([t for _, t in answers])
    for where, tree in answers:
        flags.extend(scan_answer(tree, aliases, where))
    return flags


def scan_submission(sub_dir: Path, release_dir: Path) -> list[str]:
    flags = []
    for path in sorted(Path(sub_dir).glob("*.ipynb")):
        ref_path = Path(release_dir) / path.name
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception as e:  # collect already checked; be safe
            flags.append(f"{path.name}: unreadable ({type(e).__name__})")
            continue
        if not ref_path.exists():
            continue
        ref = nbformat.read(str(ref_path), as_version=4)
        flags.extend(scan_notebook(nb, ref))
    return flags


def strip_duplicate_ids(path: Path) -> int:
    """Keep the first cell of each nbgrader grade id, turn later copies into plain cells (nbgrader
    0.9's ``DeduplicateIds`` leaves them with half their metadata, which crashes
    ``add_missing_cells``). Also strips nbgrader metadata without a grade id. Returns how many
    cells it changed."""
    nb = nbformat.read(str(path), as_version=4)
    seen, changed = set(), 0
    for c in nb.cells:
        meta = c.get("metadata", {})
        if "nbgrader" not in meta:
            continue
        gid = (meta.get("nbgrader") or {}).get("grade_id")
        if not gid or gid in seen:
            del meta["nbgrader"]
            changed += 1
        else:
            seen.add(gid)
    if changed:
        nbformat.write(nb, str(path))
    return changed
