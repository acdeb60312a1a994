# nbgrader configuration for tlcourse. `tlcourse release` and `tlcourse grade`
# load this file; plain `nbgrader ...` commands run from the repo root do too.
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "tlcourse"
c.CourseDirectory.source_directory = "solutions"  # instructor notebooks: the single source of truth
c.CourseDirectory.release_directory = "course"    # student notebooks, generated, committed
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.db_url = "sqlite:///grading/gradebook.db"
# capstone_outputs: the checkpoints notebook 12 writes beside itself when it runs (never part of a release)
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "capstone_outputs"]

# Deep-learning cells take longer than nbgrader's 30 s default.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
# A student who deletes a test cell still gets graded by the original test.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.LimitOutput.max_lines = 2000
