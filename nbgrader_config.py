"""nbgrader configuration for the course (the repository root is the course directory).

Layout (see docs/exercises.md):
    solutions/<assignment>/<assignment>.ipynb   instructor notebooks (nbgrader's "source")
    exercises/<assignment>/<assignment>.ipynb   student notebooks ("release"): `make release`
    grading/                                    everything else, git-ignored:
        submitted/<student>/<assignment>/       what students hand in
        autograded/<student>/<assignment>/      the executed, scored copies
        feedback/<student>/<assignment>/        the HTML feedback
        gradebook.db                            the sqlite gradebook
"""

import os

c = get_config()  # noqa: F821

# The folder this file lives in is the course root, wherever nbgrader is started from.
# (traitlets executes config files with __file__ set; fall back to the working directory.)
_here = os.path.dirname(os.path.abspath(globals().get("__file__", os.path.join(os.getcwd(), "x"))))
_grading = os.path.join(_here, "grading")

c.CourseDirectory.root = _here
c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = os.path.join("grading", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("grading", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("grading", "feedback")
c.CourseDirectory.solution_directory = os.path.join("grading", "solution")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_grading, "gradebook.db")
os.makedirs(_grading, exist_ok=True)


# A student notebook stuck in an infinite loop costs one cell, not the whole run.
# Each solution notebook runs in well under a minute; 180 s a cell leaves room for a loaded machine.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True

# Students cannot delete graded test cells: autograde puts back any that are missing, and
# (always, in nbgrader) overwrites the source of the ones that are there with the instructor's.
c.OverwriteCells.add_missing_cells = True

# nbgrader scores a graded cell 0 when it writes anything to stderr. The kernels nbgrader starts
# inherit this process's environment, so keep them silent: no Python warnings, no tqdm bars,
# and no GUI backend for matplotlib.
os.environ["PYTHONWARNINGS"] = "ignore"
os.environ["TQDM_DISABLE"] = "1"
os.environ["MPLBACKEND"] = "Agg"
os.environ.setdefault("PYTHONHASHSEED", "0")

# What a student's code may import while it is graded: the sandbox shows these packages of the
# course environment (and what they need), the standard library, nothing else. "*" is the default.
# NumPy assignments: no torch, SciPy or cnnlab reference layers, so "from scratch" cannot be
# bypassed through them; 07 times its answer against cnnlab.nn's naive loop; 09 trains with
# cnnlab.train on cnnlab.data's digits (which scikit-learn ships).
c.Sandbox.importable = {
    "*": ["numpy", "cnnlab.grading"],
    "07_im2col": ["numpy", "cnnlab.grading", "cnnlab.nn", "cnnlab.shapes"],
    "08_architectures": ["numpy", "torch", "cnnlab.grading"],
    "09_training": [
        "numpy", "torch", "cnnlab.grading", "cnnlab.data", "cnnlab.train", "cnnlab.shapes",
        "cnnlab.augment", "sklearn",
    ],
}

# Generated student notebooks: the usual stub, and no left-over outputs.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Student copies link to the rendered book, not to the chapters' MyST source: the published book
# (`html: baseurl:` in _config.yml) or, while that is empty, the locally built one (`make book`).
# See cnnlab/instructor/booklinks.py.
from nbgrader.converters import GenerateAssignment  # noqa: E402

from cnnlab.instructor.booklinks import BookLinks  # noqa: E402

_defaults = GenerateAssignment.class_traits()["preprocessors"].default()
c.GenerateAssignment.preprocessors = [BookLinks, *_defaults]
c.BookLinks.config_file = os.path.join(_here, "_config.yml")
