"""Predict large-model accuracy from small proxy models' lm-eval scores (`rbridge predict`).

lm-eval results files -> a tidy table, proxy and target runs joined by recipe (`data`) -> curve
forms as scikit-learn regressors, chosen by held-out error, with intervals and decision accuracy
(`fitting`) -> Markdown, JSON and plots for each command (`reports`) -> the command line (`cli`).

May import: rbridge_tasks.core and rbridge_tasks.formula; never the lm-eval glue
(rbridge_tasks.harness), so prediction needs no task, model or trace.
"""

from importlib import import_module
from typing import Any

# Imported on first use (PEP 562), so that `rbridge predict --help` loads no scikit-learn.
_EXPORTS = {
    "ExponentialFit": "predictors.fitting.estimators",
    "ExtrapolationWarning": "predictors.fitting.estimators",
    "FormSelector": "predictors.fitting.selection",
    "LinearFit": "predictors.fitting.estimators",
    "LogarithmicFit": "predictors.fitting.estimators",
    "QuadraticFit": "predictors.fitting.estimators",
    "SigmoidFit": "predictors.fitting.estimators",
    "TooFewPointsWarning": "predictors.fitting.estimators",
    "TwoStepLadder": "predictors.fitting.estimators",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'predictors' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
