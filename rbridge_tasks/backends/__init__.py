"""How models answer an `rbridge_document` request: the request and its answer, the encoding,
scored-token and over-length rules, lm-eval's request cache (`response`); the proxy's tokenizer
as lm-eval encodes (`tokenizer`); `hf-rbridge` (`hf`) and `vllm-rbridge` (`vllm`), one forward
pass per document; every other lm-eval model through its own `loglikelihood` (`pieces`); and the
table of our model names (`models`).

May import: core.
"""
