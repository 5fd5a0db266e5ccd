"""The ladder study, `rbridge study`: a synthetic reasoning benchmark (`problems`), data recipes
(`recipes`), CPU training of the ladder's models (`training`) and the study itself (`ladder`),
which drives the other commands (`rbridge traces`, `eval`, `predict`) as a user types them.

May import: everything (it sits at the top, with `cli` and `quickstart`).
"""
