"""``grade_submission(job) -> Result``: one submission, graded outside the student's process.

For each notebook of the assignment:

1. **plan** (``plan_cells``): walk the instructor's source notebook. Each answer cell is the
   student's (with the cells the student added after it); every locked cell and every test cell
   is the instructor's own, whatever the submission holds.
2. **run**: the student's cells run in a fresh sandbox (``sandbox.py``, ``student.py``); a locked
   cell runs in both processes, or in the sandbox only when it uses the student's names (09's
   training cell), its names then being the student's too. Test cells run here, in a fresh
   namespace, where the names the source's answer cells define are handles on the sandbox's
   objects (``proxy.py``) and everything else (``check_close``, ``np``, ``rng``, references) is
   this process's own.
3. **verdicts**: a test cell scores its points when it runs to the end, 0 with the check's
   message when it raises; a sandbox that dies or hangs fails the remaining tests with the
   reason. Manually graded cells wait for a person (0 when left as released).
4. **the autograded notebook**, built here for feedback and the formgrader: the student's
   outputs as capped text, under each test cell the verdict; hidden tests show their name and
   verdict only.

The unit is a plain function of picklable data: a process pool or a Dask worker can run it.
"""

from __future__ import annotations

import ast
import contextlib
import html
import io
import re
import sys
import time
import traceback
from dataclasses import dataclass, field

import nbformat

from ..notebooks import (
    BEGIN_HIDDEN,
    END_HIDDEN,
    is_solution_cell,
    is_test_cell,
    nbg,
    strip_hidden_tests,
)
from . import protocol as P
from .proxy import CellTimeout, SandboxFailure, Session
from .scratch import Analysis

STUDENT_ENTRY = ["python", "-m", "cnnlab.instructor.runner.student"]
TRUNCATED = P.TRUNCATED
# errors worth a line in the report wherever they happen (a failing test is not news)
NOTABLE_ERRORS = {
    "TimeoutError": "ran past the time limit (timeout; interrupted)",
    "MemoryError": "MemoryError (the sandbox's memory limit)",
    "SystemExit": "SystemExit (sys.exit() in a notebook)",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "RecursionError": "RecursionError",
}


class _Stopped(Exception):
    """The submission ran past its whole deadline."""


HIDDEN_OUTPUT = ("(what this cell printed is not shown in the feedback: it ran after hidden "
                 "tests, and could repeat their inputs)\n")
HIDDEN_PLACEHOLDER = "# hidden tests (not shown): they check more cases of the same function"


@dataclass
class Step:
    """One cell of the graded notebook, and where it runs.

    ``kind``: "markdown" (instructor's text), "answer-md" (a student's text), "student" (student
    code, sandbox), "both" (locked, both processes), "sandbox" (locked, uses the student's
    names: sandbox only), "test" (here)."""

    kind: str
    cell: nbformat.NotebookNode
    name: str
    source_cell: nbformat.NotebookNode | None = None
    outputs: list[str] = field(default_factory=list)
    withheld: str = ""  # what ran but is not shown (printed during hidden tests), for the flags


# --------------------------------------------------------------------------------------------
# 1. plan


def _assigned(tree: ast.Module, imports: bool = True) -> set[str]:
    """Top-level names a cell binds (defs, classes, assignment targets; imports if asked)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if imports:
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            names.update(n.id for n in ast.walk(node)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return names


def _loaded(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _parse(source: str) -> ast.Module:
    from .student import _magic_free

    try:
        return ast.parse(_magic_free(source))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def plan_cells(source_nb, submitted_nb, release_nb=None) -> tuple[list[Step], set[str]]:
    """The cells to run, in order, and the names that reach the tests as the student's."""
    release = {nbg(c).get("grade_id"): c for c in (release_nb.cells if release_nb else [])}
    known = {nbg(c).get("grade_id") for c in source_nb.cells if nbg(c).get("grade_id")}
    # the submission's cells grouped under the known cell they follow
    theirs: dict[str | None, nbformat.NotebookNode] = {}
    added: dict[str | None, list] = {None: []}
    anchor = None
    for c in submitted_nb.cells:
        gid = nbg(c).get("grade_id")
        if gid in known and gid not in theirs:
            theirs[gid] = c
            anchor = gid
            added.setdefault(gid, [])
        else:
            added.setdefault(anchor, []).append(c)

    steps = [Step("answer-md" if c.cell_type == "markdown" else "student", c, "added cell")
             for c in added[None]]
    student_names: set[str] = set()
    both_names: set[str] = set()
    for c in source_nb.cells:
        gid = nbg(c).get("grade_id")
        if not gid:
            continue  # a plain cell of the source: the student's copy comes with its anchor
        if is_solution_cell(c):
            mine = theirs.get(gid) or release.get(gid) or c
            kind = "answer-md" if mine.cell_type == "markdown" else "student"
            steps.append(Step(kind, mine, gid, c))
            if c.cell_type == "code":
                student_names |= _assigned(_parse(c.source), imports=False)
        elif c.cell_type == "markdown":
            steps.append(Step("markdown", c, gid, c))
        elif is_test_cell(c):
            steps.append(Step("test", c, gid, c))
        elif c.cell_type == "code":
            tree = _parse(c.source)
            if _loaded(tree) & student_names:
                steps.append(Step("sandbox", c, gid, c))
                student_names |= _assigned(tree, imports=False)
            else:
                steps.append(Step("both", c, gid, c))
                both_names |= _assigned(tree)
        for extra in added.get(gid, []):
            steps.append(Step("answer-md" if extra.cell_type == "markdown" else "student",
                              extra, "added cell"))
    return steps, student_names - both_names


# --------------------------------------------------------------------------------------------
# 2.-3. run and decide


@dataclass
class _Notebook:
    name: str
    steps: list[Step]
    student_names: set[str]
    verdicts: list[P.Verdict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    cell_seconds: dict[str, float] = field(default_factory=dict)


def _hidden_lines(source: str) -> set[int]:
    lines, inside = set(), False
    for i, line in enumerate(source.split("\n"), 1):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif inside:
            lines.add(i)
    return lines


def _failure(e: BaseException, source: str, filename: str) -> str:
    """The message a failed test shows: the check's own, or for a failure inside hidden tests
    only which property failed (its hint), never the hidden inputs."""
    head = f"{type(e).__name__}: {e}"
    hidden = _hidden_lines(source)
    if not hidden:
        return head
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
    if not lines or lines[-1] not in hidden:
        return head
    if type(e).__name__ == "FromScratchError":  # about the student's source, not the inputs
        return head
    hint = re.search(r"\nHint: (.*)", str(e), re.S)
    if isinstance(e, AssertionError) and hint:
        return f"a hidden test failed ({type(e).__name__}). Hint: {hint.group(1).strip()}"
    return f"a hidden test failed: {type(e).__name__} (the hidden inputs are not shown)"


def _run_notebook(nb: _Notebook, session: Session | None, settings: P.Settings,
                  failure: str | None, stop_at: float) -> None:
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    dead = failure
    broken = None  # the last student cell that failed, and its error
    after_hidden = False  # a test with hidden lines has run: its inputs are in the sandbox
    for step in nb.steps:
        t0 = time.perf_counter()
        key = f"{nb.name}/{step.name}"
        if time.monotonic() >= stop_at:
            raise _Stopped()
        if session is not None:
            session.deadline = min(time.monotonic() + settings.timeout, stop_at)
            session.output = []
        if step.kind in ("markdown", "answer-md"):
            continue
        if step.kind in ("student", "sandbox"):
            if dead is None:
                try:
                    err = session.run_cell(step.cell.source, step.name, step.kind == "sandbox")
                    if err:
                        session.output.append(str(err))
                        broken = (step.name, str(err))
                except (SandboxFailure, CellTimeout) as e:
                    dead = f"{e} (in {step.name})"
                    nb.flags.append(dead)
                except Exception as e:  # noqa: BLE001 (an odd reply: the student's own)
                    session.output.append(f"{type(e).__name__}: {e}")
                step.outputs = list(session.output)
                if after_hidden and step.outputs:
                    # the student's code may have kept what the hidden tests passed it
                    step.withheld, step.outputs = "".join(step.outputs), [HIDDEN_OUTPUT]
            else:
                step.outputs = [f"not run: {dead}"]
        elif step.kind == "both":
            out = _exec_trusted(step.cell.source, step.name, ns)
            step.outputs = [out[0]] if out[0] else []
            if out[1]:
                nb.flags.append(f"{step.name}: the instructor's cell failed in the grader: "
                                f"{out[1]}")
            if dead is None:
                try:
                    session.run_cell(step.cell.source, step.name, True)
                except (SandboxFailure, CellTimeout) as e:
                    dead = f"{e} (in {step.name})"
                    nb.flags.append(dead)
        elif step.kind == "test":
            points = float(nbg(step.source_cell).get("points") or 0)
            message = _run_test(step, ns, session, nb.student_names, dead)
            after_hidden = after_hidden or bool(_hidden_lines(step.cell.source))
            if message and message.startswith("NameError") and broken:
                message += _why_undefined(*broken, settings.importable)
            if message and session is not None and session.dead and dead is None:
                dead = f"{session.dead} (in {step.name})"
                nb.flags.append(dead)
            nb.verdicts.append(P.Verdict(nb.name, step.name, points, 0.0 if message else points,
                                         message or "", seconds=round(time.perf_counter() - t0,
                                                                      3)))
        nb.cell_seconds[key] = round(time.perf_counter() - t0, 3)
        _notice(nb, step, settings.max_output_chars)


def _why_undefined(cell: str, error: str, importable) -> str:
    text = f" (the cell {cell} failed: {error.strip().split(chr(10))[-1][:300]}"
    if "ImportError" in error or "ModuleNotFoundError" in error:
        text += (f"; while graded, this assignment's code may import only "
                 f"{', '.join(importable)} and the standard library: answers are written "
                 "from scratch")
    return text + ")"


def _notice(nb: _Notebook, step: Step, limit: int) -> None:
    """Flags for the report: notable errors and truncated output of one step."""
    texts = list(step.outputs) + [v.message for v in nb.verdicts[-1:] if v.cell == step.name]
    for name, what in NOTABLE_ERRORS.items():
        if any(name in t for t in texts):
            nb.flags.append(f"{step.name}: {what}")
    if any(TRUNCATED in t or len(t) > limit for t in [*step.outputs, step.withheld]):
        nb.flags.append(f"{step.name}: output over {limit} characters, truncated")


def _exec_trusted(source: str, name: str, ns: dict) -> tuple[str, str | None]:
    """Run an instructor's cell here; (printed output, error or None)."""
    from .student import _magic_free

    buf = io.StringIO()
    filename = f"<test {name}>"
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(_magic_free(source), filename, "exec"), ns)
    except Exception as e:  # noqa: BLE001
        return buf.getvalue(), f"{type(e).__name__}: {e}"
    return buf.getvalue(), None


def _run_test(step: Step, ns: dict, session: Session | None, names: set[str],
              dead: str | None) -> str | None:
    """Run one test cell here; None when it passed, else the message it failed with."""
    from .student import _magic_free

    if dead is not None:
        return f"not run: {dead}"
    source = step.cell.source
    filename = f"<test {step.name}>"
    buf = io.StringIO()
    try:
        values = session.names(sorted(names)) if names else {}
        for n in names:
            if n in values:
                ns[n] = values[n]
            else:
                ns.pop(n, None)
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(_magic_free(source), filename, "exec"), ns)
    except (SandboxFailure, CellTimeout) as e:
        message = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 (the test failed: its message is the verdict)
        message = _failure(e, source, filename)
    else:
        message = None
    printed = buf.getvalue() + "".join(session.output if session else [])
    if not _hidden_lines(source):
        step.outputs = [printed] if printed else []
    else:
        step.withheld = printed
    return message


# --------------------------------------------------------------------------------------------
# 4. the autograded notebook


def _text_output(text: str, limit: int, name: str = "stdout"):
    if len(text) > limit:
        text = text[:limit] + f"\n{TRUNCATED}\n"
    return nbformat.v4.new_output("stream", name=name, text=text)


_LINK_TARGET = re.compile(r"(\]\(\s*)([^)\s]*)|(^[ ]{0,3}\[[^\]]+\]:\s*)(\S+)", re.M)
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def _safe_target(target: str) -> str:
    """A link target as a browser would read it; anything with a scheme other than http(s) or
    mailto (``JavaScript:``, ``java&#115;cript:``, ``data:``) becomes ``#``."""
    plain = target
    for _ in range(8):  # markdown renderers decode entities, sometimes twice (&amp;#115;)
        plain, before = html.unescape(plain).replace("\\", ""), plain
        if plain == before:
            break
    plain = "".join(ch for ch in plain if ch.isprintable() and not ch.isspace()).lower()
    scheme = re.match(r"^[a-z][a-z0-9+.-]*:", plain)
    return target if scheme is None or scheme.group(0) in _SAFE_SCHEMES else "#"


def _safe_markdown(text: str) -> str:
    """A student's markdown with raw HTML made inert and links that run code disarmed (it renders
    in the formgrader and the feedback pages)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def fix(m: re.Match) -> str:
        if m.group(1) is not None:
            return m.group(1) + _safe_target(m.group(2))
        return m.group(3) + _safe_target(m.group(4))

    return _LINK_TARGET.sub(fix, text)


def build_notebook(nb: _Notebook, source_nb, limit: int) -> bytes:
    out = nbformat.v4.new_notebook(metadata=source_nb.metadata)
    verdicts = {v.cell: v for v in nb.verdicts}
    for step in nb.steps:
        meta = {"nbgrader": dict(nbg(step.source_cell))} if step.source_cell is not None else {}
        if step.kind == "markdown":
            out.cells.append(nbformat.v4.new_markdown_cell(step.cell.source, metadata=meta))
        elif step.kind == "answer-md":
            out.cells.append(nbformat.v4.new_markdown_cell(_safe_markdown(step.cell.source),
                                                           metadata=meta))
        else:
            source = step.cell.source
            if step.kind == "test" and _hidden_lines(source):
                source = strip_hidden_tests(source, HIDDEN_PLACEHOLDER)
            cell = nbformat.v4.new_code_cell(source, metadata=meta)
            cell.outputs = [_text_output(t, limit) for t in step.outputs if t]
            v = verdicts.get(step.name) if step.kind == "test" else None
            if v is not None:
                line = (f"passed: {v.points:g} / {v.max_points:g} points" if v.passed else
                        f"failed: 0 / {v.max_points:g} points\n{v.message}")
                cell.outputs.append(_text_output(line + "\n", limit,
                                                 "stdout" if v.passed else "stderr"))
            out.cells.append(cell)
    return nbformat.writes(out).encode()


# --------------------------------------------------------------------------------------------
# the unit


def _manual_verdicts(nb: _Notebook, release_nb) -> list[P.Verdict]:
    release = {nbg(c).get("grade_id"): c for c in release_nb.cells} if release_nb else {}
    out = []
    for step in nb.steps:
        m = nbg(step.source_cell) if step.source_cell is not None else {}
        if not (m.get("grade") and (m.get("solution") or m.get("task"))):
            continue
        r = release.get(step.name)
        untouched = r is not None and r.source.strip() == step.cell.source.strip()
        out.append(P.Verdict(nb.name, step.name, float(m.get("points") or 0),
                             0.0 if untouched else None,
                             "left as released" if untouched else "", needs_manual=not untouched))
    return out


def _zero(nb_name: str, source_nb, why: str) -> list[P.Verdict]:
    return [P.Verdict(nb_name, nbg(c)["grade_id"], float(nbg(c).get("points") or 0), 0.0, why)
            for c in source_nb.cells if nbg(c).get("grade") and nbg(c).get("grade_id")]


def _start(settings: P.Settings):
    from . import sandbox

    policy = sandbox.Policy(importable=tuple(settings.importable), mem_mb=settings.mem_mb,
                            cpu_s=settings.cpu_s, nproc=settings.nproc,
                            fsize_mb=settings.fsize_mb, scratch_mb=settings.scratch_mb,
                            unsafe_no_sandbox=settings.unsafe_no_sandbox, warm=True)
    sb = sandbox.start(STUDENT_ENTRY, policy)
    frame, _ = P.encode({"max_output": settings.max_output_chars}, {})
    sb.channel.send(frame, timeout=30)
    return sb


def grade_submission(job: P.Job) -> P.Result:
    """Grade one submission; every verdict is decided in this process."""
    from ..scan import scan_notebook

    t0, cpu0 = time.perf_counter(), _cpu()
    settings = job.settings
    stop_at = time.monotonic() + (settings.deadline or float("inf"))
    verdicts, flags, notebooks, seconds = [], [], {}, {}
    for name in sorted(job.source):
        source_nb = nbformat.reads(job.source[name].decode(), as_version=4)
        release_nb = (nbformat.reads(job.release[name].decode(), as_version=4)
                      if name in job.release else None)
        raw = job.submission.get(name)
        try:
            submitted = nbformat.reads(raw.decode(), as_version=4) if raw is not None else None
        except Exception as e:  # noqa: BLE001 (collect checks files; be safe anyway)
            submitted, why = None, f"{name}.ipynb is not a readable notebook ({type(e).__name__})"
        else:
            why = f"no {name}.ipynb in the submission"
        if submitted is None:
            verdicts += _zero(name, source_nb, why)
            flags.append(why)
            continue
        if release_nb is not None:
            flags += scan_notebook(submitted, release_nb)
        steps, student_names = plan_cells(source_nb, submitted, release_nb)
        nb = _Notebook(name, steps, student_names)
        analysis = Analysis([s.cell.source for s in steps if s.kind == "student"],
                            [s.cell.source for s in steps if s.kind in ("both", "sandbox")],
                            settings.importable)
        session, failure = None, None
        try:
            sb = _start(settings)
            session = Session(sb, settings, analysis)
            session.deadline = time.monotonic() + 60
            message, _ = P.split_frame(sb.channel.recv(60, 2**16))
            if message.get("hello") != 1:
                raise P.ProtocolError("no hello")
        except BaseException as e:  # noqa: BLE001 (no sandbox: every test fails, with why)
            failure = f"the student's code could not be started: {type(e).__name__}: {e}"
            flags.append(failure)
            if session is not None:
                session.fail(failure)
        try:
            _run_notebook(nb, session, settings, failure, stop_at)
        except _Stopped:
            return P.Result(job.student, job.assignment, [], list(dict.fromkeys(flags + nb.flags)),
                            {}, round(time.perf_counter() - t0, 3), seconds,
                            settings.unsafe_no_sandbox, error=f"grading stopped after "
                            f"{settings.deadline:.0f} s (the submission's time limit)")
        finally:
            if session is not None:
                session.close()
        verdicts += nb.verdicts + _manual_verdicts(nb, release_nb)
        flags += nb.flags
        seconds.update(nb.cell_seconds)
        notebooks[name] = build_notebook(nb, source_nb, settings.max_output_chars)
    return P.Result(job.student, job.assignment, verdicts, list(dict.fromkeys(flags)), notebooks,
                    round(time.perf_counter() - t0, 3), seconds, settings.unsafe_no_sandbox,
                    cpu_seconds=round(_cpu() - cpu0, 3))


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the sandboxes)."""
    import resource

    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


if __name__ == "__main__":  # pragma: no cover (a manual check: grade one file)
    sys.exit("use `cnnlab autograde`")
