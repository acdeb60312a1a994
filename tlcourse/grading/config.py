"""nbgrader glue shared by release and grade: config, paths, environment."""
from __future__ import annotations

import os
import pathlib
import sys


def repo_root() -> pathlib.Path:
    """The course repository (the folder holding nbgrader_config.py and solutions/)."""
    env = os.environ.get("TLCOURSE_ROOT")
    if env:
        return pathlib.Path(env).resolve()
    here = pathlib.Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "nbgrader_config.py").exists() and (d / "solutions").is_dir():
            return d
    pkg = pathlib.Path(__file__).resolve().parents[2]
    if (pkg / "nbgrader_config.py").exists():
        return pkg
    raise FileNotFoundError("cannot find the course repository (a folder with nbgrader_config.py and "
                            "solutions/). Run from inside it or set TLCOURSE_ROOT.")


def grading_environment() -> None:
    """What nbgrader and its kernels need, whether or not a venv is activated."""
    bindir = str(pathlib.Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path  # nbgrader shells out to `alembic`
    os.environ["TLCOURSE_PROFILE"] = "quick"  # grading always runs the quick profile
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def load_config(root: pathlib.Path, **overrides):
    """The committed nbgrader_config.py, with ``overrides`` as 'Section.trait': value."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    cfg.CourseDirectory.root = str(root)
    extra = Config()
    for key, value in overrides.items():
        section, trait = key.split(".")
        setattr(extra[section], trait, value)
    cfg.merge(extra)
    return cfg


def course_directories(root: pathlib.Path, work: pathlib.Path) -> dict[str, str]:
    """nbgrader's overrides that read solutions from ``root`` and keep every other folder under ``work``."""
    return {
        "CourseDirectory.source_directory": str(root / "solutions"),
        "CourseDirectory.release_directory": str(work / "release"),
        "CourseDirectory.submitted_directory": str(work / "submitted"),
        "CourseDirectory.autograded_directory": str(work / "autograded"),
        "CourseDirectory.feedback_directory": str(work / "feedback"),
        "CourseDirectory.db_url": f"sqlite:///{work}/gradebook.db",
    }


def make_api(cfg):
    import logging

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    api.log.setLevel(logging.WARNING)
    return api


def assignments(root: pathlib.Path) -> list[str]:
    """Assignment ids in course order: the numbered folders of solutions/."""
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir() and p.name[:2].isdigit())
