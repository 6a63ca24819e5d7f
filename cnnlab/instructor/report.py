"""``cnnlab report``: one self-contained HTML page about an assignment's grading run.

Plots embedded as base64 PNG (the page is a single file to mail or archive): the score
distribution, the failure rate of each test cell, the distribution of grading times (a histogram
and the slowest few: readable at 1,000 students); then who is missing (on the class list, no
submission), late (with the penalty) and stale (graded against an older version), the table of
flagged submissions with their reasons, and the files collect could not place or dropped.
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
from .roster import Roster


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

    times = [v.get("seconds", 0.0) for v in state.values() if v.get("status") != "unusable"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(times, bins=min(30, max(1, len(times))), color="#55a868", edgecolor="white")
    ax.set(xlabel="seconds per submission", ylabel="submissions",
           title=f"Grading time ({len(times)} submissions)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    figs["times"] = _png(fig)
    plt.close(fig)
    return figs, dict(zip(names, rates, strict=True))


def _names(students: list[str]) -> str:
    """A list of student ids that stays one paragraph at 1,000 students."""
    return ", ".join(html.escape(s) for s in students) or "none"


def _missing_late_stale(rows, missing: list[str], unknown: list[str]) -> str:
    late = sorted((r for r in rows if r["seconds_late"] > 0), key=lambda r: -r["seconds_late"])
    stale = sorted(r["student"] for r in rows if r["stale"])
    late_rows = "\n".join(
        f"<tr><td>{html.escape(r['student'])}</td><td>{r['seconds_late'] / 3600:.1f} h</td>"
        f"<td>-{r['late_penalty']:g}</td><td>{r['score']:g}/{r['max_score']:g}</td></tr>"
        for r in late)
    return f"""<h2 id="missing-late-stale">Missing, late, stale</h2>
<p><b>Missing ({len(missing)})</b>, on the class list or in the gradebook without a submission
(0 in the LMS only if you enter it): {_names(missing)}</p>
<p><b>Not on the class list ({len(unknown)})</b>, a submission from a student the imported class
list does not name: {_names(unknown)}</p>
<details{' open' if len(late) <= 20 else ''}><summary><b>Late ({len(late)})</b>, penalty from the
late-submission plugin in nbgrader_config.py</summary>
<table><tr><th>student</th><th>late by</th><th>penalty</th><th>score</th></tr>
{late_rows}</table></details>
<p><b>Stale ({len(stale)})</b>, graded against an older version of the assignment (run
<code>cnnlab autograde ASSIGNMENT --stale</code>): {_names(stale)}</p>
"""


def report(course: Course, assignment: str, out: Path | None = None, log=print) -> Path:
    """Write ``grading/report-<assignment>.html`` (or ``out``); return its path."""
    course.check_assignment(assignment)
    rows, cells = gradebook_rows(course, [assignment])
    if not rows:
        raise ValueError(f"no student in the gradebook for {assignment}: run "
                         f"`cnnlab collect` and `cnnlab autograde {assignment}` first")
    state = read_json(course.state_dir(assignment) / "autograde.json", {})
    record = collect_record(course, assignment)
    figs, rates = _figures([r for r in rows if r["status"] != "missing"], cells, state)
    esc = html.escape
    flagged = [(r["student"], state.get(r["student"], {}).get("flags", []), r)
               for r in rows if state.get(r["student"], {}).get("flags")]
    max_score = max(r["max_score"] for r in rows)
    handed = [r for r in rows if r["status"] != "missing"]
    mean = sum(r["score"] for r in handed) / len(handed) if handed else 0.0
    mean_all = sum(r["score"] for r in rows) / len(rows)
    roster = Roster.load(course)
    missing = sorted({r["student"] for r in rows if r["status"] == "missing"}
                     | set(roster.missing({r["student"] for r in handed})))
    slowest = sorted(((v.get("seconds", 0.0), s) for s, v in state.items()
                      if v.get("status") != "unusable"), reverse=True)[:5]
    table = "\n".join(
        f"<tr><td>{esc(s)}</td><td>{r['score']:g}/{r['max_score']:g}</td>"
        f"<td>{esc(r['status'])}</td><td><ul>{''.join(f'<li>{esc(f)}</li>' for f in fl)}"
        "</ul></td></tr>" for s, fl, r in flagged)
    unplaced = "\n".join(f"<tr><td>{esc(u['file'])}</td><td>{esc(u['reason'])}</td></tr>"
                         for u in record.get("unplaced", []))
    dropped = "\n".join(f"<tr><td>{esc(d['student'])}</td><td>{esc(d['file'])}</td>"
                        f"<td>{esc(d['kept'])}</td></tr>" for d in record.get("dropped", []))
    worst = sorted(rates.items(), key=lambda t: -t[1])[:3]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Grading report: {esc(assignment)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}}
img{{max-width:100%}}ul{{margin:0;padding-left:1.2em}}</style></head><body>
<h1>Grading report: {esc(assignment)}</h1>
<p>{len(handed)} submissions, mean score {mean:.2f} / {max_score:g} (after late penalties;
{len(missing)} students without a submission are not in it; counting them as 0 the mean is
{mean_all:.2f});
{sum(r['status'] == 'graded' for r in rows)} graded, {sum(r['status'] == 'failed' for r in rows)}
failed to grade, {sum(r['status'] == 'unusable' for r in rows)} unusable files,
{len(flagged)} flagged. Most failed tests: {esc(', '.join(f'{n} ({v:.0f}%)' for n, v in worst))}.
</p>
<h2>Score distribution</h2>
<img alt="score distribution" src="data:image/png;base64,{figs['scores']}">
<h2>Failure rate of each test cell</h2>
<img alt="failure rate per test cell" src="data:image/png;base64,{figs['fails']}">
<h2>Time per submission</h2>
<img alt="distribution of grading times" src="data:image/png;base64,{figs['times']}">
<p>Slowest: {esc(', '.join(f'{s} ({t:.1f} s)' for t, s in slowest)) or 'none'}.</p>
{_missing_late_stale(rows, missing, record.get("unknown", []))}
<h2>Earlier attempts collect dropped ({len(record.get('dropped', []))})</h2>
<table><tr><th>student</th><th>dropped</th><th>kept</th></tr>
{dropped}</table>
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
