"""The cnnlab command: the instructor's cycle on top of nbgrader.

    cnnlab release [ASSIGNMENT]             student versions into exercises/ (all if omitted)
    cnnlab collect ASSIGNMENT SOURCE        an LMS zip or folder -> grading/submitted/
    cnnlab autograde ASSIGNMENT [--jobs N]  grade in N processes into grading/gradebook.db
             [--cluster tcp://host:8786|local:N]   ... or on a Dask cluster
    cnnlab feedback ASSIGNMENT              HTML per student, hidden tests not shown
    cnnlab export [ASSIGNMENT]              grading/grades*.csv and grading/cells*.csv
    cnnlab report ASSIGNMENT                grading/report-<assignment>.html
    cnnlab demo [ASSIGNMENT]                the whole cycle on generated sample submissions

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

    s = sub.add_parser("collect", help="lay out an LMS download for nbgrader")
    s.add_argument("assignment")
    s.add_argument("source", help="a zip file or a folder of notebooks")

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
    s.add_argument("--cluster", metavar="ADDRESS",
                   help="grade on Dask: tcp://host:8786 (a running scheduler) or local:N "
                        "(N local workers)")
    s.add_argument("--force", action="store_true",
                   help="regrade submissions already graded and unchanged (default: a re-run "
                        "grades only what is missing, failed or changed)")

    s = sub.add_parser("feedback", help="per-student HTML feedback without hidden tests")
    s.add_argument("assignment")
    s.add_argument("--student", action="append")

    s = sub.add_parser("export", help="grades as CSV, per student and per student per cell")
    s.add_argument("assignment", nargs="?")
    s.add_argument("--out", metavar="DIR")

    s = sub.add_parser("report", help="HTML report with plots and flagged submissions")
    s.add_argument("assignment")
    s.add_argument("--out", metavar="FILE")

    s = sub.add_parser("demo", help="run the whole cycle on generated sample submissions")
    s.add_argument("assignment", nargs="?",
                   help="a course assignment (default: a toy assignment, graded in seconds)")
    s.add_argument("--dir", default=None,
                   help="scratch course directory (default: a new temporary folder)")
    s.add_argument("--jobs", "-j", type=int, default=2)
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

        release(course, [args.assignment] if args.assignment else None)
    elif args.command == "collect":
        from .instructor.collect import collect

        res = collect(course, args.assignment, args.source)
        print(f"{len(res.placed)} placed, {len(res.unusable)} unusable, "
              f"{len(res.unplaced)} not placed, {len(res.flags)} flagged")
    elif args.command == "autograde":
        from .instructor.autograde import Limits, autograde

        autograde(course, args.assignment, jobs=args.jobs, students=args.student,
                  limits=Limits(timeout=args.timeout, mem_mb=args.memory_mb,
                                max_output_chars=args.max_output,
                                unsafe_no_sandbox=args.unsafe_no_sandbox),
                  cluster=args.cluster, force=args.force)
    elif args.command == "feedback":
        from .instructor.feedback import feedback

        feedback(course, args.assignment, students=args.student)
    elif args.command == "export":
        from .instructor.export import export

        export(course, args.assignment, Path(args.out) if args.out else None)
    elif args.command == "report":
        from .instructor.report import report

        report(course, args.assignment, Path(args.out) if args.out else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
