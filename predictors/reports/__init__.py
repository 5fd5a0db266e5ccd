"""Reports: each `rbridge predict` command's result (`commands`, `compare`), as Markdown and
JSON (`report`) and plots (`plots`).

May import: predictors.choices, predictors.data, predictors.fitting, rbridge_tasks.core.
"""
