"""The traces toolkit, `rbridge traces`: generate frontier traces with per-token logprobs
(`generate`, `paper`, with the `backend_hf`/`backend_vllm`/`backend_openai` generators and the
frontier prompts in `prompts`), add confidences to text-only traces (`confidences`), import
other formats (`importers`), check answers (`answers`, `humaneval_exec`), and `validate` and
summarise (`stats`) packs; `cli` is the command line.

May import: core, questions, records.
"""
