"""The benchmarks' questions and what the proxy reads before a trace: the six built-in sources,
read from a local copy or the hub, the proxy's context and the answer types (`sources`); a
question file of the user's own (`question_file`); any lm-eval task's documents with the task's
own prompt (`lm_eval_source`); the one description of where a benchmark's questions come from,
shared by the task options and `rbridge traces` (`source`); few-shot exemplars in each built-in
benchmark's lm-eval chain-of-thought format (`fewshot`).

May import: core (and lm-eval, for `lm_eval_source`).
"""
