"""Release and grading: the nbgrader glue."""
from .grade import Row, grade, summary
from .release import release, release_diff

__all__ = ["Row", "grade", "summary", "release", "release_diff"]
