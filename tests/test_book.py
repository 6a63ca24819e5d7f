"""The book's sources, checked without building it: TOC, chapter template, glue keys, citations.

Fast (no execution): the build itself (`make book`) executes every cell, and
`tests/test_book_browser.py` checks the built HTML in Chromium.
"""

import ast
import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())

_EXT = ROOT / "book" / "_ext" / "course_links.py"
_spec = importlib.util.spec_from_file_location("course_links", _EXT)
course_links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course_links)


def _toc_files(toc):
    """Every `file:` of the TOC, in reading order, root first."""
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


TOC_FILES = _toc_files(TOC)
# The course chapters are the first part of the TOC; the second part (formula sheet, references) and
# the introduction follow no chapter template.
CHAPTERS = [entry["file"] for entry in TOC["parts"][0]["chapters"]]


def _source(docname: str) -> Path:
    return ROOT / f"{docname}.md"


def _text(docname: str) -> str:
    return _source(docname).read_text(encoding="utf-8")


def _headings(text: str, level: int) -> list[str]:
    """Markdown headings of one level, outside code fences."""
    out, fence = [], None
    for line in text.splitlines():
        m = re.match(r"^(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.startswith(fence) and line.strip() == fence:
                fence = None
            continue
        if fence is None and line.startswith("#" * level + " "):
            out.append(line[level + 1 :].strip())
    return out


def _code_cells(text: str) -> list[str]:
    return re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", text, flags=re.S | re.M)


def test_toc_lists_the_chapters_in_the_slides_order():
    """The chapter file names are fixed (the exercises and the README link to them); the backward
    pass and im2col chapters sit between pooling and the ConvNet pattern; chapters are numbered."""
    expected = [
        "01-fully-connected", "02-convolution-layer", "03-spatial-dimensions", "04-padding-summary",
        "05-one-by-one", "06-pooling", "06a-backpropagation", "06b-im2col", "07-fc-and-pattern",
        "08-architectures", "09-implementation",
    ]  # fmt: skip
    assert [c.split("/")[-1] for c in CHAPTERS] == expected, CHAPTERS
    assert TOC["root"] == "book/intro"
    assert {"book/formulas", "book/references"} <= set(TOC_FILES)
    assert TOC["parts"][0].get("numbered") is True, "the chapters must be numbered (_toc.yml)"


@pytest.mark.parametrize("docname", TOC_FILES)
def test_every_toc_entry_exists_with_a_title(docname):
    path = _source(docname)
    assert path.is_file(), f"_toc.yml lists {docname!r} but {path} does not exist"
    assert _headings(_text(docname), 1), f"{path} has no '# Title' heading"


NOTEBOOKS = [d for d in TOC_FILES if _code_cells(_text(d)) or "{glue" in _text(d)]


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_notebook_chapters_have_the_jupytext_header(docname):
    """Pages with code are MyST notebooks: jupytext front matter with the python3 kernel."""
    text = _text(docname)
    assert text.startswith("---\n"), f"{docname}: no front matter"
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["jupytext"]["text_representation"]["format_name"] == "myst", docname
    assert front["kernelspec"]["name"] == "python3", docname


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_follows_the_template(docname):
    """STYLE.md 7: Overview -> sections -> Summary -> Practice (toggled solutions) -> exercise."""
    text = _text(docname)
    h2 = _headings(text, 2)
    for required in ("Overview", "Summary", "Practice"):
        assert required in h2, f"{docname}: no '## {required}' section (has {h2})"
    assert h2[0] == "Overview", f"{docname}: the first section is {h2[0]!r}, not 'Overview'"
    assert h2.index("Summary") < h2.index("Practice"), f"{docname}: Practice must follow Summary"
    body = h2[1 : h2.index("Summary")]
    assert len(body) >= 2, f"{docname}: fewer than two sections between Overview and Summary"

    practice = text.split("## Practice", 1)[1]
    exercises = re.findall(r"`{3,}\{exercise\}[^\n]*\n(?::[\w-]+:.*\n)*?:label:\s*(\S+)", practice)
    solutions = re.findall(r"`{3,}\{solution\}\s+(\S+)[^\n]*\n((?::[\w-]+:.*\n)*)", practice)
    assert exercises, f"{docname}: no {{exercise}} in the Practice section"
    assert {s for s, _ in solutions} == set(exercises), (
        f"{docname}: exercises {exercises} and solutions {[s for s, _ in solutions]} do not match"
    )
    for label, options in solutions:
        assert ":class: dropdown" in options, f"{docname}: the solution to {label} is not toggled"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_links_its_graded_exercise(docname):
    """The last part of a chapter links a graded exercise with the {exercise} role (a known id)."""
    text = _text(docname)
    after_practice = text.split("## Practice", 1)[-1]
    ids = re.findall(r"\{exercise\}`([^`]+)`", after_practice)
    assert ids, f"{docname}: no {{exercise}}`<id>` link after the Practice section"
    unknown = [i for i in ids if i not in course_links.ASSIGNMENTS]
    assert not unknown, f"{docname}: unknown ids {unknown}; known: {course_links.ASSIGNMENTS}"


@pytest.mark.parametrize("docname", [d for d in TOC_FILES if "{glue" in _text(d)])
def test_every_glued_number_is_computed_in_the_same_page(docname):
    """Each {glue}`key` in the prose has a glue("key", ...) call in a code cell of the same page."""
    text = _text(docname)
    used = set(re.findall(r"\{glue(?::\w+)?\}`([A-Za-z_][\w]*)", text))
    used |= set(re.findall(r"```\{glue:figure\}\s+(\w+)", text))
    code = "\n".join(_code_cells(text))
    defined = set(re.findall(r"""glue\(\s*["']([\w]+)["']""", code))
    # keys made in a loop, glue(f"arch_{name}_depth", ...): match them as patterns
    templates = re.findall(r'glue\(\s*f"([^"]+)"', code) + re.findall(r"glue\(\s*f'([^']+)'", code)
    patterns = [re.compile(re.sub(r"\\\{.*?\\\}", r"\\w+", re.escape(t)) + "$") for t in templates]
    missing = sorted(k for k in used - defined if not any(p.match(k) for p in patterns))
    assert not missing, f"{docname}: {missing} are used in the prose but never glued"


def test_citations_exist_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    for paper in (
        "lecun1998gradient", "krizhevsky2012imagenet", "simonyan2014very", "szegedy2015going",
        "he2016deep", "cs231n",
    ):  # fmt: skip
        assert paper in keys, f"references.bib lacks {paper}"
    for docname in TOC_FILES:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", _text(docname)):
            for key in group.split(","):
                assert key.strip() in keys, f"{docname} cites {key.strip()!r}: not in the .bib"


def test_the_build_is_strict_and_offline():
    """Execution errors fail the build; math comes from the local MathJax copy, not a CDN."""
    execute = CONFIG["execute"]
    assert execute["execute_notebooks"] == "cache" and execute["raise_on_error"] is True
    sphinx = CONFIG["sphinx"]
    assert "sphinx_exercise" in sphinx["extra_extensions"]
    mathjax = sphinx["config"]["mathjax_path"]
    assert not re.match(r"(https?:)?//", mathjax), f"mathjax_path {mathjax!r} is remote"
    static = [ROOT / p for p in sphinx["config"]["html_static_path"]]
    assert any((s / mathjax).is_file() for s in static), f"{mathjax} is not in {static}"
    assert CONFIG["launch_buttons"].get("thebe") is not True, "thebe loads remote scripts"
    for key in ("logo",):
        assert (ROOT / CONFIG[key]).is_file(), CONFIG[key]
    assert (ROOT / CONFIG["html"]["favicon"]).is_file()
    make = (ROOT / "Makefile").read_text()
    assert "jupyter-book build . --warningiserror --nitpick --keep-going" in make


# --- The book explains the graded functions without printing them --------------------------------
# The names come from the instructor notebooks: every function or class defined in a solution cell
# (nbgrader `solution: true`). The package's own versions of those functions are the same answers,
# so they are protected too: the same name in cnnlab, or (where the package names it differently)
# the name in PACKAGE_NAMES.
PACKAGE_NAMES = {
    "max_pool_forward": "max_pool2d",
    "max_pool_backward": "max_pool2d_backward",
    "avg_pool_forward": "avg_pool2d",
    "avg_pool_backward": "avg_pool2d_backward",
    "conv_backward": "conv2d_backward",
    "conv_im2col": "conv2d",
}
PACKAGE_MODULES = (
    "cnnlab.nn", "cnnlab.shapes", "cnnlab.models", "cnnlab.gradcheck", "cnnlab.train",
)  # fmt: skip


def _graded_definitions() -> dict[str, list[str]]:
    """{name: [source]} of every top-level def/class in the solution cells of solutions/."""
    found: dict[str, list[str]] = {}
    for notebook in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            graded = cell["metadata"].get("nbgrader", {}).get("solution")
            if cell["cell_type"] != "code" or not graded:
                continue
            source = "".join(cell["source"])
            for node in ast.parse(source).body:
                if isinstance(node, ast.FunctionDef | ast.ClassDef):
                    found.setdefault(node.name, []).append(ast.get_source_segment(source, node))
    return found


GRADED = _graded_definitions()


def _protected_sources() -> dict[str, list[str]]:
    """The graded names with their solutions' sources and the package's versions of them."""
    out = {name: list(sources) for name, sources in GRADED.items()}
    for name in GRADED:
        target = PACKAGE_NAMES.get(name, name)
        for module_name in PACKAGE_MODULES:
            obj = getattr(importlib.import_module(module_name), target, None)
            if obj is not None and (inspect.isfunction(obj) or inspect.isclass(obj)):
                out[name].append(inspect.getsource(obj))
                out.setdefault(target, out[name])
    return out


def _significant_lines(code: str) -> list[str]:
    """Code lines that carry an answer: no blanks, comments, imports, docstrings, short lines."""
    lines = []
    for line in code.splitlines():
        line = line.split("  #")[0].strip()
        if len(line) < 16 or line.startswith(("#", "import ", "from ", '"""', "'''", ">>>")):
            continue
        lines.append(re.sub(r"\s+", " ", line))
    return lines


def _shingles(lines: list[str], n: int = 3) -> set[tuple[str, ...]]:
    return {tuple(lines[i : i + n]) for i in range(len(lines) - n + 1)}


def test_the_graded_functions_are_known():
    """The list is derived, not typed: it must find the exercises' functions (parser sanity)."""
    for name in ("conv2d_naive", "conv_output_size", "im2col", "conv_backward", "max_pool_forward",
                 "BasicBlock", "Inception", "numerical_gradient"):  # fmt: skip
        assert name in GRADED, f"{name} is not defined in any solution cell: {sorted(GRADED)}"


@pytest.mark.parametrize("docname", TOC_FILES)
def test_no_chapter_prints_a_graded_function(docname):
    """No page prints (inspect.getsource) or pastes the source of a function a graded exercise asks
    for, nor the package's version of it: the book explains the idea, the exercise asks for code."""
    text = _text(docname)
    protected = _protected_sources()
    for call in re.findall(r"getsource\(([^()]*)\)", text):
        names = set(re.findall(r"\w+", call))
        leaked = sorted(names & set(protected))
        assert not leaked, f"{docname} prints the source of graded {leaked} (getsource({call}))"
    code = "\n".join(_code_cells(text) + re.findall(r"^```\w*\n(.*?)^```", text, flags=re.S | re.M))
    page = _shingles(_significant_lines(code))
    for name, sources in protected.items():
        for source in sources:
            common = page & _shingles(_significant_lines(source))
            assert not common, f"{docname} contains lines of graded {name}: {sorted(common)[0]}"


def _cells_with_options(text: str) -> list[tuple[str, str]]:
    """(options, code) of every code cell: options are the `:key:` lines or the `---` YAML block."""
    cells = []
    for body in _code_cells(text):
        lines = body.split("\n")
        if lines[0] == "---":
            end = lines.index("---", 1)
            cells.append(("\n".join(lines[: end + 1]), "\n".join(lines[end + 1 :])))
        else:
            n = next((i for i, line in enumerate(lines) if not line.startswith(":")), len(lines))
            cells.append(("\n".join(lines[:n]), "\n".join(lines[n:])))
    return cells


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_plumbing_is_hidden(docname):
    """glue() calls and source printing are plumbing: they live in cells whose input is removed, so
    the reader sees the computation and the number in the text, not the wiring between them."""
    for options, code in _cells_with_options(_text(docname)):
        if "remove-cell" in options or "remove-input" in options:
            continue
        for plumbing in ("glue(", "getsource("):
            assert plumbing not in code, f"{docname}: a visible cell calls {plumbing}...):\n{code}"


def _prose(text: str) -> str:
    """The text outside code cells, code fences, inline code and math."""
    text = re.sub(r"^(`{3,})\{code-cell\}.*?^\1\s*$", "", text, flags=re.S | re.M)
    text = re.sub(r"^```(?!\{).*?^```\s*$", "", text, flags=re.S | re.M)
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    return re.sub(r"`[^`]*`|\$[^$]*\$", "", text)


@pytest.mark.parametrize("docname", TOC_FILES)
def test_one_multiplication_sign_and_citation_style(docname):
    """Sizes are written with × (or \\times in math), never the letter x; citations use {cite}."""
    prose = _prose(_text(docname))
    letter_x = re.findall(r"\b\d+ ?x ?\d+\b", prose)
    assert not letter_x, f"{docname}: sizes written with the letter x: {letter_x[:5]}"
    assert "{cite:p}" not in prose and "{cite:t}" not in prose, f"{docname}: one citation role only"


def test_the_citation_style_is_numbered_in_text_and_list():
    assert CONFIG["sphinx"]["config"]["bibtex_reference_style"] == "label"
    assert CONFIG["sphinx"]["config"]["bibtex_default_style"] == "plain"
def test_exercise_ids_are_the_assignments_in_solutions():
    """course_links derives the ids from solutions/ as the exercise tests do (no second list)."""
    solutions = (ROOT / "solutions").iterdir()
    found = tuple(sorted(p.name for p in solutions if (p / f"{p.name}.ipynb").is_file()))
    assert course_links.ASSIGNMENTS == found and found
    for a in found:
        assert (ROOT / course_links.student_notebook(a).lstrip("/")).is_file(), a
    assert course_links.hub_url("https://hub.example.org/", "05_pooling") == (
        "https://hub.example.org/hub/user-redirect/lab/tree/05_pooling/05_pooling.ipynb"
    )
