"""The lm-eval glue: the task options (`options`), the documents a task scores (`documents`:
traces joined to their questions), the tasks (`task`, `baselines`, `span_mask`: the authors'
span-mask release), what lm-eval must know by name (`registration`), `rbridge eval` (`runner`),
the Python API (`api`) and one-line errors under plain `lm_eval` (`one_line_errors`).

May import: core, questions, records, formula, backends.
"""
