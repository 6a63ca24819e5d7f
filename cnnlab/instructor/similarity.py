"""``cnnlab similarity ASSIGNMENT``: which submissions share code, for the instructor to look at.

The code of each submission's answer cells (the solution cells of the released notebook, and any
code cell the student added; the code the course provides is left out) is tokenised and
fingerprinted by winnowing with ``copydetect`` (variable and function names are replaced by
placeholders, so renaming does not hide a copy; fingerprints are a set, so reordering helpers
does not either). Fingerprints of the released notebook's own code are boilerplate and ignored.

Compared: every pair of submissions that share a fingerprint, and every submission with each
reference text: the modules of the ``cnnlab`` package and the code cells of the book's chapters.
``grading/similarity-<assignment>.html`` lists the pairs at or above the instructor's threshold,
highest first, side by side with the matching regions highlighted. It decides nothing: a high
similarity is a reason to read two submissions, not a finding.
"""

from __future__ import annotations

import html
import io
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .course import Course
from .notebooks import is_solution_cell, nbg

STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError()")


@dataclass(frozen=True)
class Match:
    """One compared pair: ``a`` is a student, ``b`` a student or ``"reference: <text>"``."""

    a: str
    b: str
    similarity: float            # the larger of the two shares of code found in the other
    share_a: float
    share_b: float
    html_a: str                  # the code of each side, matched regions in <mark>
    html_b: str


def answer_code(nb, release_nb) -> str:
    """The code of a submission's answer cells, stubs and IPython magics removed."""
    answer_ids = {nbg(c)["grade_id"] for c in release_nb.cells
                  if is_solution_cell(c) and nbg(c).get("grade_id")}
    known = {nbg(c).get("grade_id") for c in release_nb.cells if nbg(c).get("grade_id")}
    provided = {c.source.strip() for c in release_nb.cells if c.cell_type == "code"}
    parts = []
    for c in nb.cells:
        if c.cell_type != "code" or c.source.strip() in provided:
            continue
        gid = nbg(c).get("grade_id")
        if gid in answer_ids or gid not in known:
            lines = [x for x in c.source.split("\n")
                     if x.strip() not in STUB_LINES and not x.lstrip().startswith(("%", "!"))]
            parts.append("\n".join(lines).strip())
    return "\n\n".join(p for p in parts if p) + "\n"


def reference_texts(course: Course) -> dict[str, str]:
    """{label: code}: each module of the cnnlab package (the instructor tool excepted) and the
    code cells of each book chapter (MyST ``{code-cell}`` blocks)."""
    import cnnlab

    pkg = Path(cnnlab.__file__).resolve().parent
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        rel = p.relative_to(pkg.parent).as_posix()
        if "/instructor/" in rel or rel.endswith("cli.py"):
            continue
        out[f"reference: {rel}"] = p.read_text()
    cell = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
    for book in dict.fromkeys((course.root / "book", pkg.parent / "book")):
        for p in sorted(book.rglob("*.md")) if book.is_dir() else []:
            code = "\n\n".join(m.group(1) for m in cell.finditer(p.read_text()))
            if code.strip():
                out[f"book: {p.relative_to(book.parent).as_posix()}"] = code
    return out


def _fingerprint(label: str, code: str, k: int, win: int, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{label}.py", k, win, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(code))


def _marked(fp, slices) -> str:
    from copydetect.utils import highlight_overlap

    if len(slices[0]) == 0:
        return html.escape(fp.raw_code)
    text, _ = highlight_overlap(fp.raw_code, slices, "<mark>", "</mark>", escape_html=True)
    return text


def compare(codes: dict[str, str], references: dict[str, str], boilerplate_code: str,
            k: int = 25, guarantee: int = 30) -> list[Match]:
    """Every pair of ``codes`` sharing a fingerprint, and each code with each reference,
    most similar first. ``k`` (noise threshold) and ``guarantee`` are copydetect's: matches
    shorter than ``k`` characters of normalised code are ignored, matches at least ``guarantee``
    long are always found."""
    import numpy as np
    from copydetect import compare_files

    if not 0 < k <= guarantee:
        raise ValueError(f"need 0 < k <= guarantee, got k={k}, guarantee={guarantee}")
    win = guarantee - k + 1
    base = np.array(sorted(_fingerprint("provided", boilerplate_code, k, win, None).hashes))
    prints = {s: _fingerprint(s, c, k, win, base) for s, c in codes.items() if c.strip()}
    refs = {r: _fingerprint("ref", c, k, win, base) for r, c in references.items()}
    owners = defaultdict(set)
    for s, fp in prints.items():
        for h in fp.hashes:
            owners[int(h)].add(s)
    pairs = set()
    for group in owners.values():
        if len(group) > 1:
            pairs.update(itertools.combinations(sorted(group), 2))
    out = []

    def add(a, fa, b, fb):
        _, (sa, sb), (la, lb) = compare_files(fa, fb)
        if sa or sb:
            out.append(Match(a, b, float(max(sa, sb)) if not b.startswith(("reference", "book"))
                             else float(sa), float(sa), float(sb),
                             _marked(fa, la), _marked(fb, lb)))

    for a, b in sorted(pairs):
        add(a, prints[a], b, prints[b])
    for s, fp in prints.items():
        best = None
        for r, rf in refs.items():
            if fp.hashes & rf.hashes:
                _, (sa, _), _ = compare_files(fp, rf)
                if best is None or sa > best[0]:
                    best = (sa, r)
        if best is not None:
            add(s, fp, best[1], refs[best[1]])
    return sorted(out, key=lambda m: (-m.similarity, m.a, m.b))


def similarity(course: Course, assignment: str, threshold: float = 0.5, top: int = 50,
               out: Path | None = None, log=print) -> tuple[Path, list[Match]]:
    """Compare the submissions of ``assignment``; write the HTML page; return (page, matches)."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"--threshold {threshold}: a share of the code, between 0 and 1")
    course.check_assignment(assignment)
    codes: dict[str, str] = {}
    provided = []
    for name in course.notebooks(assignment):
        rel_path = course.release / assignment / f"{name}.ipynb"
        if not rel_path.exists():
            raise ValueError(f"{rel_path} does not exist: run `cnnlab release {assignment}`")
        rel = nbformat.read(str(rel_path), 4)
        provided += [c.source for c in rel.cells if c.cell_type == "code"]
        for p in sorted(course.submitted.glob(f"*/{assignment}/{name}.ipynb")):
            student = p.parent.parent.name
            try:
                nb = nbformat.read(str(p), 4)
            except Exception as e:  # collect checked it; say so and go on
                log(f"skipped {student}: {type(e).__name__}: {e}")
                continue
            codes[student] = codes.get(student, "") + answer_code(nb, rel)
    matches = compare(codes, reference_texts(course), "\n\n".join(provided))
    shown = [m for m in matches if m.similarity >= threshold][:top]
    out = Path(out or course.grading / f"similarity-{assignment}.html")
    out.write_text(_page(assignment, len(codes), threshold, shown, len(matches)))
    log(f"wrote {out}: {len(shown)} pair(s) at or above {threshold:.0%} of {len(matches)} "
        f"compared with overlap ({len(codes)} submissions)")
    return out, matches


def _page(assignment: str, n: int, threshold: float, shown: list[Match], total: int) -> str:
    esc = html.escape
    blocks = "\n".join(
        f"""<section><h2 id="pair-{i}">{i}. {esc(m.a)} &harr; {esc(m.b)}: {m.similarity:.0%}</h2>
<p>{m.share_a:.0%} of {esc(m.a)}'s answer code is found in the other, {m.share_b:.0%} of the
other's in {esc(m.a)}'s.</p>
<div class="pair"><pre>{m.html_a}</pre><pre>{m.html_b}</pre></div></section>"""
        for i, m in enumerate(shown, 1))
    rows = "\n".join(f'<tr><td><a href="#pair-{i}">{i}</a></td><td>{esc(m.a)}</td>'
                     f"<td>{esc(m.b)}</td><td>{m.similarity:.0%}</td></tr>"
                     for i, m in enumerate(shown, 1))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similarity: {esc(assignment)}</title>
<style>body{{font-family:sans-serif;max-width:90em;margin:2em auto;line-height:1.4}}
.pair{{display:grid;grid-template-columns:1fr 1fr;gap:1em}}
pre{{background:#f6f6f6;padding:.5em;overflow:auto;font-size:85%}}mark{{background:#ffd54f}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em}}</style>
</head><body><h1>Similarity of the answer code: {esc(assignment)}</h1>
<p>{n} submissions; {total} pairs share code; the {len(shown)} at or above the threshold of
{threshold:.0%} are shown, most similar first. Provided code is ignored; names are normalised.
This page decides nothing: read both sides before drawing any conclusion (short or standard
answers look alike).</p>
<table><tr><th>#</th><th>submission</th><th>compared with</th><th>similarity</th></tr>
{rows}</table>
{blocks}
</body></html>
"""
