"""The book's sources, checked without building it: TOC, chapter template, glue keys, citations.

Fast (no execution): the build itself (`make book`) executes every cell, and
`tests/test_book_browser.py` checks the built HTML in Chromium.
"""

import importlib.util
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


def test_toc_lists_the_nine_chapters_in_the_slides_order():
    """The chapter file names are fixed (the exercises and the README link to them)."""
    expected = [
        "01-fully-connected", "02-convolution-layer", "03-spatial-dimensions", "04-padding-summary",
        "05-one-by-one", "06-pooling", "07-fc-and-pattern", "08-architectures", "09-implementation",
    ]  # fmt: skip
    assert [c.split("/")[-1] for c in CHAPTERS] == expected, CHAPTERS
    assert TOC["root"] == "book/intro"
    assert {"book/formulas", "book/references"} <= set(TOC_FILES)


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
