"""Trace records and their IO: the record and its validation (`schema`), trace files (`files`:
reading, resumable appending, atomic rewriting), where a benchmark's records are found
(`packs`), the authors' released layout (`released`), final-answer lines (`answer_lines`), and
the text of frontier tokens (`token_text`, `json_reply`: characters mapped through JSON
escapes); the authors' span-mask release (`mask_rows`: its rows, from the hub or a local copy;
`span_tags`: its `<span>` tags, read as the authors' scorer does and strictly).

May import: core, questions.
"""
