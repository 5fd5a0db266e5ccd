"""The names `rbridge predict` offers as choices, kept apart from the modules that implement them.

Building the parser (and so `--help` or a usage error) then imports none of numpy, pandas,
scikit-learn, scipy or matplotlib, which take seconds to load; each implementing module takes
its names from here.
"""

PAPER_FORMS = ("linear", "quadratic", "exponential", "logarithmic")
FORM_NAMES = (*PAPER_FORMS, "sigmoid")  # `estimators.FORMS`, one fit class each
DEFAULT_FORMS = FORM_NAMES  # the paper's four and the sigmoid with a chance floor
SELECT_NAMES = ("cv_r2", "cv_mae", "train_r2")  # the first is the default (`selection.SELECT`)
KINDS = ("prediction", "confidence")
GATE_RULES = ("difference", "candidate-interval")  # the first is the default
DUPLICATE_POLICIES = ("error", "mean")
MODES = ("recipes", "items")
ROW_CHOICES = ("all", "last")
DEFAULT_PATTERN = "results_*.json"
