"""Data in: lm-eval results files to a tidy table (`ingest`), proxy and target runs joined by a
key (`join`), accuracy tables brought in as results files (`tables`), the accuracy targets of the
six benchmarks (`targets`) and DataDecide's baselines from samples files (`datadecide`).

May import: predictors.choices, rbridge_tasks.core, rbridge_tasks.formula.
"""
