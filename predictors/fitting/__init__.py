"""Fitting: the curve forms as scikit-learn estimators (`estimators`), the choice of form by
held-out error (`selection`), cross-validation and the other evaluation designs (`evaluation`),
intervals (`intervals`), one fit of joined runs (`fit`) and its file (`fitfile`), and decision
accuracy (`ranking`).

May import: predictors.choices, predictors.data, rbridge_tasks.core.
"""
