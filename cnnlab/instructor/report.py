"""``cnnlab report``: one self-contained HTML page about an assignment's grading run.

Four parts, plots embedded as base64 PNG (the page is a single file to mail or archive):
the score distribution, the failure rate of each test cell, the grading time of each submission,
and the table of flagged submissions with their reasons (plus the files collect could not place).
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path

from .collect import collect_record
from .course import Course, read_json
from .export import gradebook_rows


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _figures(rows, cells, state):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figs = {}
    scores = [r["score"] / r["max_score"] * 100 for r in rows if r["max_score"]]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(scores, bins=[i * 10 for i in range(11)], color="#4c72b0", edgecolor="white")
    ax.set(xlabel="score (% of the maximum)", ylabel="students",
           title=f"Score distribution ({len(scores)} students)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    figs["scores"] = _png(fig)
    plt.close(fig)

    fails, total = defaultdict(int), defaultdict(int)
    for c in cells:
        total[c["cell"]] += 1
        fails[c["cell"]] += bool(c["failed"])
    names = sorted(total)
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    rates = [100 * fails[n] / total[n] for n in names]
    ax.barh(names, rates, color="#c44e52")
    ax.set(xlabel="students failing the test (%)", xlim=(0, 100),
           title="Failure rate of each test cell")
    ax.invert_yaxis()
    figs["fails"] = _png(fig)
    plt.close(fig)

    timed = sorted(((s, v.get("seconds", 0.0)) for s, v in state.items()
                    if v.get("status") != "unusable"), key=lambda t: -t[1])
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(timed) + 1.2))
    ax.barh([s for s, _ in timed], [t for _, t in timed], color="#55a868")
    ax.set(xlabel="seconds", title="Grading time of each submission")
    ax.invert_yaxis()
    figs["times"] = _png(fig)
    plt.close(fig)
    return figs, dict(zip(names, rates, strict=True))


def report(course: Course, assignment: str, out: Path | None = None, log=print) -> Path:
    """Write ``grading/report-<assignment>.html`` (or ``out``); return its path."""
    course.check_assignment(assignment)
    rows, cells = gradebook_rows(course, [assignment])
    if not rows:
        raise ValueError(f"no student in the gradebook for {assignment}: run "
                         f"`cnnlab collect` and `cnnlab autograde {assignment}` first")
    state = read_json(course.state_dir(assignment) / "autograde.json", {})
    record = collect_record(course, assignment)
    figs, rates = _figures(rows, cells, state)
    esc = html.escape
    flagged = [(r["student"], state.get(r["student"], {}).get("flags", []), r)
               for r in rows if state.get(r["student"], {}).get("flags")]
    mean = sum(r["score"] for r in rows) / len(rows)
    max_score = max(r["max_score"] for r in rows)
    table = "\n".join(
        f"<tr><td>{esc(s)}</td><td>{r['score']:g}/{r['max_score']:g}</td>"
        f"<td>{esc(r['status'])}</td><td><ul>{''.join(f'<li>{esc(f)}</li>' for f in fl)}"
        "</ul></td></tr>" for s, fl, r in flagged)
    unplaced = "\n".join(f"<tr><td>{esc(u['file'])}</td><td>{esc(u['reason'])}</td></tr>"
                         for u in record.get("unplaced", []))
    worst = sorted(rates.items(), key=lambda t: -t[1])[:3]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Grading report: {esc(assignment)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}}
img{{max-width:100%}}ul{{margin:0;padding-left:1.2em}}</style></head><body>
<h1>Grading report: {esc(assignment)}</h1>
<p>{len(rows)} students, mean score {mean:.2f} / {max_score:g};
{sum(r['status'] == 'graded' for r in rows)} graded, {sum(r['status'] == 'failed' for r in rows)}
failed to grade, {sum(r['status'] == 'unusable' for r in rows)} unusable files,
{len(flagged)} flagged. Most failed tests: {esc(', '.join(f'{n} ({v:.0f}%)' for n, v in worst))}.
</p>
<h2>Score distribution</h2>
<img alt="score distribution" src="data:image/png;base64,{figs['scores']}">
<h2>Failure rate of each test cell</h2>
<img alt="failure rate per test cell" src="data:image/png;base64,{figs['fails']}">
<h2>Time per submission</h2>
<img alt="grading time per submission" src="data:image/png;base64,{figs['times']}">
<h2 id="flagged">Flagged submissions ({len(flagged)})</h2>
<table><tr><th>student</th><th>score</th><th>status</th><th>reasons</th></tr>
{table}</table>
<h2>Files collect could not place ({len(record.get('unplaced', []))})</h2>
<table><tr><th>file</th><th>reason</th></tr>
{unplaced}</table>
</body></html>
"""
    out = Path(out or course.grading / f"report-{assignment}.html")
    out.write_text(page)
    log(f"wrote {out}")
    return out
