"""``tlcourse doctor | fetch | release | grade | feedback | export | site``."""
from __future__ import annotations

import argparse
import platform
import sys


def cmd_doctor(args) -> int:
    """Versions, device, profile, and where every asset resolves (verified or not)."""
    import importlib.metadata as md

    from .assets import REGISTRY, cache_root, is_online, locate
    from .profile import ProfileError, profile_name

    print(f"python      {platform.python_version()} ({sys.executable})")
    for pkg in ("torch", "torchvision", "transformers", "nbgrader", "jupyterlab", "tlcourse"):
        try:
            print(f"{pkg:<11} {md.version(pkg)}")
        except md.PackageNotFoundError:
            print(f"{pkg:<11} MISSING  -> make setup")
    import torch

    from .device import pick_device
    print(f"device      {pick_device()} (cuda={torch.cuda.is_available()}, threads={torch.get_num_threads()})")
    try:
        prof = profile_name()
        print(f"profile     {prof}")
    except ProfileError as exc:
        prof = "quick"
        print(f"profile     ERROR: {exc}")
    online = is_online()
    print(f"network     {'online' if online else 'offline'}; cache {cache_root()}")
    problems = 0
    print("\nassets")
    for name, asset in REGISTRY.items():
        found, attempts = locate(asset, download=False)
        if found:
            print(f"  ok       {name:<20} verified  {found.source}")
        elif asset.required(prof):
            problems += 1
            print(f"  MISSING  {name:<20} {attempts[-1] if attempts else ''}\n           fix: {asset.fix}")
        else:
            print(f"  optional {name:<20} not here; {_why_optional(asset)} (add it: {asset.fix})")
    print(f"\nevery asset the {prof} profile needs is verified" if not problems
          else f"\n{problems} asset(s) the {prof} profile needs are missing")
    return 1 if problems else 0


def _why_optional(asset) -> str:
    if asset.needed_by == "quick":
        return "the profile needs it"
    if asset.needed_by == "full":
        return "only the full profile needs it"
    return "no notebook needs it" + ("" if asset.offline else "; online only")


def cmd_fetch(args) -> int:
    """Provide and verify what the profile needs; report the optional rest. Exit 1 only for a required miss.

    Required: the names given, else every asset the profile's notebooks need
    (``--profile full`` adds the full-size data). The rest is tried too (a
    download when online) but only reported, with the command that adds it.
    Seeding torch hub's cache and converting SmolLM2 depend on those two
    assets alone, never on another asset's outcome.
    """
    from .assets import REGISTRY, AssetError, get_asset, locate, resolve, seed_torch_hub

    if args.names:
        required, optional = [get_asset(n).name for n in args.names], []
    else:
        required = [n for n, a in REGISTRY.items() if a.required(args.profile)]
        optional = [n for n, a in REGISTRY.items() if not a.required(args.profile) and a.files]
    found, failed = {}, []
    for name in required:
        try:
            found[name] = resolve(name)
            print(f"ok       {name:<20} {found[name].source}")
        except AssetError as exc:
            failed.append(name)
            print(f"FAIL     {name}: {exc}")
    for name in optional:
        hit, _ = locate(name)
        if hit:
            found[name] = hit
            print(f"ok       {name:<20} {hit.source} (optional)")
        else:
            asset = REGISTRY[name]
            print(f"optional {name:<20} not here: {_why_optional(asset)}; add it with: {asset.fix}")
    if "mobilenet_v2" in found:
        print(f"seeded torch hub cache: {seed_torch_hub('mobilenet_v2')}")
    if "smollm2-135m" in found and not args.no_convert:
        from .text import prepare_causal_lm
        print(f"SmolLM2 ready (converted once, later loads ~1 s): {prepare_causal_lm()}")
    if failed:
        print(f"\n{len(failed)} required asset(s) missing: {', '.join(failed)}. Each FAIL above says how to fix it.")
        return 1
    what = "the assets named" if args.names else f"every asset the {args.profile} profile needs"
    print(f"\n{what} verified ({len(required)})")
    return 0


def cmd_release(args) -> int:
    from .grading import release, release_diff
    if args.check:
        diff = release_diff()
        if diff:
            print("course/ is out of date with solutions/ in:\n  " + "\n  ".join(diff) + "\nRun: tlcourse release")
            return 1
        print("course/ is in sync with solutions/")
        return 0
    for a in release():
        print(f"released course/{a}")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number; e.g. --deadline-factor 5")
    return value


def cmd_grade(args) -> int:
    """Exit 0 when every submission was graded or skipped, 1 when any failed, 2 when grading could not start."""
    from .grading import grade, summary
    from .grading.grade import GradingBusy, Limits
    limits = Limits(memory_mb=args.memory_mb, nproc=args.max_processes, cell_timeout=args.cell_timeout,
                    cpus=args.cpus, deadline_factor=args.deadline_factor, submission_timeout=args.submission_timeout)
    try:
        rows = grade(args.submissions, out=args.out, only=args.assignment or None, workers=args.workers,
                     limits=limits, regrade=args.regrade)
    except (GradingBusy, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    print(summary(rows))
    print(f"gradebook CSV: {args.out}/grades.csv; class report: {args.out}/report/")
    return 1 if any(r.status == "failed" for r in rows) else 0


def cmd_feedback(args) -> int:
    """Per-submission feedback pages and a class page per assignment, after `tlcourse grade`."""
    from .grading.feedback import build_feedback
    try:
        written = build_feedback(args.out, root=args.root)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    pages = [p for p in written if p.parent.name != "class"]
    print(f"wrote {len(pages)} feedback page(s) and {len(written) - len(pages)} class page(s) "
          f"under {args.out}/feedback/ (no hidden test or solution in them)")
    return 0


def cmd_export(args) -> int:
    """Grades in an LMS's gradebook import format."""
    from .grading.lms import ExportError, write_export
    bad = [pair for pair in args.canvas_assignment or [] if "=" not in pair]
    if bad:
        print(f"error: --canvas-assignment takes ASSIGNMENT=ID (e.g. 01_feature_extraction=12345), got {bad}")
        return 2
    ids = dict(pair.split("=", 1) for pair in args.canvas_assignment or [])
    try:
        path, result = write_export(args.out, args.lms, args.roster, ids, args.moodle_id)
    except (ExportError, FileNotFoundError) as exc:
        print(f"error: {exc}")
        return 2
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"wrote {path}")
    return 0


def cmd_site(args) -> int:
    """Static HTML course site: public (student notebooks) or instructor (executed solutions)."""
    from .site import INSTRUCTOR, PUBLIC, SiteError, build_site
    try:
        build_site(args.out, kind=INSTRUCTOR if args.instructor else PUBLIC, executed=args.executed,
                   execute=not args.no_execute, only=args.assignment)
    except SiteError as exc:
        print(f"site: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tlcourse", description="Transfer-learning course tools.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("doctor", help="versions, device, profile, assets").set_defaults(func=cmd_doctor)
    f = sub.add_parser("fetch", help="prefetch and verify assets for an offline lab")
    f.add_argument("names", nargs="*", help="asset names, all required (default: what the profile needs)")
    f.add_argument("--profile", choices=("quick", "full"), default="quick",
                   help="quick (default): what every notebook needs; full: the full-size data too (strict)")
    f.add_argument("--no-convert", action="store_true", help="skip the one-time SmolLM2 conversion")
    f.set_defaults(func=cmd_fetch)
    r = sub.add_parser("release", help="regenerate course/ from solutions/")
    r.add_argument("--check", action="store_true", help="only report whether course/ is up to date")
    r.set_defaults(func=cmd_release)
    g = sub.add_parser("grade", help="autograde SUBMISSIONS/<student>/<assignment>/*.ipynb")
    g.add_argument("submissions")
    g.add_argument("--out", default="grading", help="where the gradebook, CSV and report go")
    g.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    g.add_argument("--workers", type=int, default=1, help="submissions graded at once (default 1)")
    g.add_argument("--regrade", action="store_true", help="grade again submissions already graded unchanged")
    g.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: nbgrader_config.py)")
    g.add_argument("--memory-mb", type=int, default=4096, help="memory limit per kernel (default 4096)")
    g.add_argument("--max-processes", type=int, default=512, help="processes+threads per kernel (default 512)")
    g.add_argument("--cpus", type=float, default=None,
                   help="CPU cores per kernel, a cgroup quota (default: the machine's cores / workers)")
    g.add_argument("--deadline-factor", type=_positive_float, default=10.0,
                   help="a submission may run this many times the solution's own run time (default 10)")
    g.add_argument("--submission-timeout", type=int, default=None,
                   help="seconds of wall clock per submission, overriding --deadline-factor")
    g.set_defaults(func=cmd_grade)
    fb = sub.add_parser("feedback", help="feedback pages per submission and per class, after grading")
    fb.add_argument("out", nargs="?", default="grading", help="the folder `tlcourse grade` wrote (default grading)")
    fb.add_argument("--root", help="the course folder it was graded from (default: found from the cwd)")
    fb.set_defaults(func=cmd_feedback)
    ex = sub.add_parser("export", help="grades in Canvas's or Moodle's gradebook import CSV")
    ex.add_argument("out", nargs="?", default="grading", help="the folder `tlcourse grade` wrote (default grading)")
    ex.add_argument("--lms", choices=("canvas", "moodle"), required=True)
    ex.add_argument("--roster", help="CSV mapping student folders to LMS ids (see tlcourse/grading/lms.py)")
    ex.add_argument("--canvas-assignment", action="append", metavar="ASSIGNMENT=ID",
                    help="update Canvas assignment ID with this assignment's scores (repeatable)")
    ex.add_argument("--moodle-id", default="username", choices=("username", "email", "idnumber"),
                    help="the roster column Moodle matches users on (default username)")
    ex.set_defaults(func=cmd_export)
    s = sub.add_parser("site", help="build the static HTML course site (public, or --instructor)")
    s.add_argument("--instructor", action="store_true",
                   help="executed solutions with hidden tests (not for publishing); default: the public build")
    s.add_argument("--out", help="output folder (default: site/public or site/instructor)")
    s.add_argument("--executed", metavar="DIR",
                   help="use executed solutions DIR/<assignment>/<notebook>.ipynb instead of executing now")
    s.add_argument("--no-execute", action="store_true", help="render without outputs (seconds, no figures)")
    s.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    s.set_defaults(func=cmd_site)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
