"""nbgrader configuration for the course: sources in solutions/, student releases in exercises/.

Used by nbgrader's own commands run from the repository root (nbgrader generate_assignment,
collect, autograde, formgrader) and by ``autograde.release``, which regenerates exercises/.
"""

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "dropout"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///.nbgrader/gradebook.db"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
