"""Predict large-model accuracy from small proxy models' lm-eval scores (rBridge, issue 5).

lm-eval results files -> tidy table (`ingest`) -> proxy/target pairs by recipe (`join`) -> fit
forms as scikit-learn regressors (`estimators`, `selection`) -> CV, groups, extrapolation,
transfer (`evaluation`), ranking agreement (`ranking`), bootstrap intervals (`intervals`) ->
reports, plots and the `rbridge predict` CLI (`commands`, `report`, `plots`, `cli`).
Published CSV/YAML accuracy tables come in as lm-eval results files through `tables`.
"""

from importlib import import_module
from typing import Any

# Imported on first use (PEP 562), so that `rbridge predict --help` loads no scikit-learn.
_EXPORTS = {
    "ExponentialFit": "predictors.estimators",
    "ExtrapolationWarning": "predictors.estimators",
    "FormSelector": "predictors.selection",
    "LinearFit": "predictors.estimators",
    "LogarithmicFit": "predictors.estimators",
    "QuadraticFit": "predictors.estimators",
    "SigmoidFit": "predictors.estimators",
    "TooFewPointsWarning": "predictors.estimators",
    "TwoStepLadder": "predictors.estimators",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'predictors' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
