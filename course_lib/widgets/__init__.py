"""Interactive demos for the notebooks: the learning-rate explorer and the neural-network playground.

Both are ipywidgets apps for JupyterLab 4 / ipywidgets 8 that compute with
``course_lib.np_ref`` and draw with matplotlib (rendered to a PNG image widget). Where no
widget front end exists (nbconvert, nbclient, HTML export, the autograder) they display
a static figure instead; see ``course_lib.widgets._static`` for how that is decided and
how to force either mode (``static=`` or the ``COURSE_WIDGETS`` environment variable).
"""

from course_lib.widgets.explorer import LearningRateExplorer, learning_rate_explorer
from course_lib.widgets.playground import Playground, playground
from course_lib.widgets.verdict import Verdict, classify_run

__all__ = [
    "learning_rate_explorer",
    "LearningRateExplorer",
    "playground",
    "Playground",
    "Verdict",
    "classify_run",
]
