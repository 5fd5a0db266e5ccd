"""Frontier trace packs: generate, import, add confidences to, validate and summarise them.

`rbridge traces --help` lists the commands (`cli.py`); each module does one job.
"""
