"""Trace records and their IO: the record and its validation (`schema`), trace files (`files`:
reading, resumable appending, atomic rewriting), where a benchmark's records are found
(`packs`), the authors' released layout (`released`), final-answer lines (`answer_lines`), and
the text of frontier tokens (`token_text`, `json_reply`: characters mapped through JSON
escapes).

May import: core, questions.
"""
