"""The cnnlab command: the instructor's cycle on top of nbgrader.

    cnnlab release [ASSIGNMENT] [--bundle]  student versions into exercises/ (all if omitted);
                                            --bundle: also one zip per assignment for students
    cnnlab collect ASSIGNMENT SOURCE        an LMS zip or folder -> grading/submitted/
    cnnlab autograde ASSIGNMENT [--jobs N]  grade in N processes into grading/gradebook.db
             [--cluster tcp://host:8786|local:N]   ... or on a Dask cluster
    cnnlab feedback ASSIGNMENT              HTML per student, hidden tests not shown
    cnnlab export [ASSIGNMENT]              grading/grades*.csv, cells*.csv (--format canvas|moodle)
    cnnlab report ASSIGNMENT                grading/report-<assignment>.html
    cnnlab demo [ASSIGNMENT]                the whole cycle on generated sample submissions
    cnnlab roster import FILE               the class list (Canvas/Moodle CSV) -> gradebook
    cnnlab due ASSIGNMENT WHEN              the due date (late penalties: nbgrader_config.py)
    cnnlab log [STUDENT]                    the audit log: who graded what, when, from which file
    cnnlab similarity ASSIGNMENT            answer code shared between submissions (HTML)

See docs/instructors.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnlab", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--course", metavar="DIR",
                   help="course directory (default: the nearest one holding nbgrader_config.py)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("release", help="generate student versions (nbgrader generate_assignment)")
    s.add_argument("assignment", nargs="?")
    s.add_argument("--bundle", action="store_true",
                   help="also write grading/bundles/<id>.zip: the student notebook, a README, "
                   "the student-side Jupyter configuration")
    s.add_argument("--exchange", action="store_true",
                   help="with --bundle: the course runs an nbgrader exchange (show the "
                   "Assignment List to students)")
    s.add_argument("--force", action="store_true",
                   help="release a changed assignment that students already submitted")

    s = sub.add_parser("collect", help="lay out an LMS download for nbgrader")
    s.add_argument("assignment")
    s.add_argument("source", help="a zip file or a folder of notebooks")
    s.add_argument("--lms", choices=["canvas", "moodle", "blackboard", "plain"],
                   help="the download's layout (default: detected from the file names)")
    s.add_argument("--timezone", default="UTC",
                   help="the LMS server's time zone, for times in file names (default UTC)")

    s = sub.add_parser("autograde", help="autograde in parallel, sandboxed")
    s.add_argument("assignment")
    s.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of CPUs)")
    s.add_argument("--timeout", type=int, default=None,
                   help="seconds per cell (default: Execute.timeout of nbgrader_config.py)")
    s.add_argument("--memory-mb", type=int, default=4096,
                   help="address space of each sandboxed process (default 4096)")
    s.add_argument("--max-output", type=int, default=20_000,
                   help="characters of output kept per cell (default 20000)")
    s.add_argument("--student", action="append", help="grade only this student (repeatable)")
    s.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run students' code without bubblewrap (macOS): no isolation at all")
    s.add_argument("--stale", action="store_true",
                   help="grade only the students graded against an older version")
    s.add_argument("--cluster", metavar="ADDRESS",
                   help="grade on Dask: tcp://host:8786 (a running scheduler) or local:N "
                        "(N local workers)")
    s.add_argument("--force", action="store_true",
                   help="regrade submissions already graded and unchanged (default: a re-run "
                        "grades only what is missing, failed or changed)")

    s = sub.add_parser("feedback", help="per-student HTML feedback without hidden tests")
    s.add_argument("assignment")
    s.add_argument("--student", action="append")

    s = sub.add_parser("export", help="grades as CSV, or the Canvas / Moodle grade import file")
    s.add_argument("assignment", nargs="?")
    s.add_argument("--out", metavar="DIR")
    s.add_argument("--format", choices=["csv", "canvas", "moodle"], default="csv",
                   help="csv (default), or the LMS's grade import file")

    s = sub.add_parser("report", help="HTML report with plots and flagged submissions")
    s.add_argument("assignment")
    s.add_argument("--out", metavar="FILE")

    s = sub.add_parser("demo", help="run the whole cycle on generated sample submissions")
    s.add_argument("assignment", nargs="?",
                   help="a course assignment (default: a toy assignment, graded in seconds)")
    s.add_argument("--dir", default=None,
                   help="scratch course directory (default: a new temporary folder)")
    s.add_argument("--jobs", "-j", type=int, default=2)

    s = sub.add_parser("roster", help="the class list")
    s.add_argument("action", choices=["import"])
    s.add_argument("file", help="CSV exported by the LMS (Canvas gradebook, Moodle participants)")

    s = sub.add_parser("due", help="set the due date (late penalties come from nbgrader_config.py)")
    s.add_argument("assignment")
    s.add_argument("when", help="'2025-10-01 23:59', '2025-10-01 23:59 Europe/London' or 'none'")
    s.add_argument("--timezone", default="UTC", help="zone of a time without one (default UTC)")

    s = sub.add_parser("log", help="print the audit log")
    s.add_argument("student", nargs="?")

    s = sub.add_parser("similarity", help="answer code shared between submissions, as HTML")
    s.add_argument("assignment")
    s.add_argument("--threshold", type=float, default=0.5,
                   help="show pairs sharing at least this share of code (default 0.5)")
    s.add_argument("--top", type=int, default=50, help="at most this many pairs (default 50)")
    s.add_argument("--out", metavar="FILE")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ValueError as e:
        print(f"cnnlab {args.command}: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from .instructor.course import Course

    if args.command == "demo":
        from .instructor.demo import run_demo

        run_demo(args.assignment, Path(args.dir) if args.dir else None, jobs=args.jobs,
                 course_root=Path(args.course) if args.course else None)
        return 0
    course = Course.load(args.course)
    course.check_database()
    if args.command == "release":
        from .instructor.release import release

        ids = release(course, [args.assignment] if args.assignment else None,
                      force=args.force)
        if args.bundle:
            from .instructor.booklinks import BookSettings
            from .instructor.bundle import StudentTools, bundle

            bundle(course, ids, book_url=BookSettings.load(course.root).url,
                   tools=StudentTools(exchange=args.exchange))
    elif args.command == "collect":
        from .instructor.collect import collect

        res = collect(course, args.assignment, args.source, layout=args.lms,
                      timezone=args.timezone)
        print(f"{len(res.placed)} placed, {len(res.unusable)} unusable, "
              f"{len(res.unplaced)} not placed, {len(res.flags)} flagged, "
              f"{len(res.dropped)} earlier attempts dropped, {len(res.missing)} missing, "
              f"{len(res.unknown)} not on the class list ({res.layout} layout)")
    elif args.command == "autograde":
        from .instructor.autograde import Limits, autograde

        autograde(course, args.assignment, jobs=args.jobs, students=args.student, stale=args.stale,
                  limits=Limits(timeout=args.timeout, mem_mb=args.memory_mb,
                                max_output_chars=args.max_output,
                                unsafe_no_sandbox=args.unsafe_no_sandbox),
                  cluster=args.cluster, force=args.force)
    elif args.command == "feedback":
        from .instructor.feedback import feedback

        feedback(course, args.assignment, students=args.student)
    elif args.command == "export":
        from .instructor.export import export

        export(course, args.assignment, Path(args.out) if args.out else None, fmt=args.format)
    elif args.command == "report":
        from .instructor.report import report

        report(course, args.assignment, Path(args.out) if args.out else None)
    else:
        return _run_class300(course, args)
    return 0


def _run_class300(course, args) -> int:
    """roster, due, log, similarity."""
    if args.command == "roster":
        from .instructor.roster import import_roster

        import_roster(course, args.file)
    elif args.command == "due":
        from .instructor.late import parse_time, set_due_date

        when = None if args.when.lower() == "none" else parse_time(args.when, args.timezone)
        set_due_date(course, args.assignment, when)
    elif args.command == "log":
        from .instructor.audit import format_record, read

        records = read(course, args.student)
        for rec in records:
            print("\n".join(format_record(rec)))
        if not records:
            print("no audit records" + (f" for {args.student}" if args.student else ""))
    elif args.command == "similarity":
        from .instructor.similarity import similarity

        similarity(course, args.assignment, threshold=args.threshold, top=args.top,
                   out=Path(args.out) if args.out else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
