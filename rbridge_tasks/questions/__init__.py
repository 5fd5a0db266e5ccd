"""The benchmarks' questions: the six sources, read from a local copy or the hub, and the
context the proxy reads before a trace (`sources`); few-shot exemplars in each benchmark's own
lm-eval chain-of-thought format (`fewshot`).

May import: core.
"""
