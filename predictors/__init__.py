"""Predict large-model accuracy from small proxy models' lm-eval scores (rBridge, issue 5).

lm-eval results files -> tidy table (`ingest`) -> proxy/target pairs by recipe (`join`) -> fit
forms as scikit-learn regressors (`estimators`, `selection`) -> CV, groups, extrapolation,
transfer (`evaluation`), ranking agreement (`ranking`), bootstrap intervals (`intervals`) ->
reports, plots and the `rbridge predict` CLI (`commands`, `report`, `plots`, `cli`).
Published CSV/YAML accuracy tables come in as lm-eval results files through `tables`.
"""

from predictors.estimators import (
    ExponentialFit,
    ExtrapolationWarning,
    LinearFit,
    LogarithmicFit,
    QuadraticFit,
    SigmoidFit,
    TooFewPointsWarning,
    TwoStepLadder,
)
from predictors.selection import FormSelector

__all__ = [
    "ExponentialFit",
    "ExtrapolationWarning",
    "FormSelector",
    "LinearFit",
    "LogarithmicFit",
    "QuadraticFit",
    "SigmoidFit",
    "TooFewPointsWarning",
    "TwoStepLadder",
]
