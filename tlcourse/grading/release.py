"""Generate the student notebooks in course/ from solutions/ with nbgrader."""
from __future__ import annotations

import json
import pathlib
import tempfile

from .config import assignments, grading_environment, load_config, make_api, repo_root


class ReleaseError(RuntimeError):
    pass


def generate(root: pathlib.Path, release_dir: pathlib.Path, only: list[str] | None = None) -> list[str]:
    """Run nbgrader generate_assignment for each assignment into ``release_dir``."""
    grading_environment()
    done = []
    with tempfile.TemporaryDirectory(prefix="tlcourse-release-") as tmp:
        cfg = load_config(root, **{"CourseDirectory.release_directory": str(release_dir),
                                   "CourseDirectory.db_url": f"sqlite:///{tmp}/gradebook.db"})
        api = make_api(cfg)
        for a in only or assignments(root):
            result = api.generate_assignment(a, force=True)
            if not result["success"]:
                raise ReleaseError(f"nbgrader could not generate {a}:\n{result.get('error') or result.get('log')}")
            done.append(a)
    for nb in release_dir.rglob("*.ipynb"):  # stable bytes: sorted keys, one trailing newline
        data = json.loads(nb.read_text())
        nb.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return done


def release(root: pathlib.Path | None = None) -> list[str]:
    """Regenerate course/ from solutions/. Built aside, then swapped in, so a failure leaves course/ intact."""
    root = root or repo_root()
    course = root / "course"
    with tempfile.TemporaryDirectory(prefix="tlcourse-course-", dir=root) as tmp:
        staged = pathlib.Path(tmp) / "course"
        done = generate(root, staged)
        old = pathlib.Path(tmp) / "old"
        if course.exists():
            course.rename(old)
        staged.rename(course)
    return done


def release_diff(root: pathlib.Path | None = None) -> list[str]:
    """Files in which course/ differs from a fresh release (empty when in sync)."""
    root = root or repo_root()
    with tempfile.TemporaryDirectory(prefix="tlcourse-check-") as tmp:
        fresh = pathlib.Path(tmp) / "course"
        generate(root, fresh)
        course = root / "course"
        names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        names |= {p.relative_to(course) for p in course.rglob("*") if p.is_file()} if course.exists() else set()
        return sorted(str(n) for n in names
                      if not (fresh / n).is_file() or not (course / n).is_file()
                      or (fresh / n).read_bytes() != (course / n).read_bytes())
