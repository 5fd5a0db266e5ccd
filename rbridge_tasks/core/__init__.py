"""What every other part of the package uses, and nothing of the package itself: the one error
type (`errors`), the one reader of JSON and JSON Lines (`jsonl`), atomic writes (`atomic`),
whether the Hugging Face hub is reachable (`hub`), and option values read alike from every
source (`options`).

May import: nothing from rbridge_tasks.
"""
