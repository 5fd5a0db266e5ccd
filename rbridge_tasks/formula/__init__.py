"""The rBridge formula, in one place: frontier confidences to proxy-token weights (`weights`:
Algorithm 1 and its options) and one document's numbers from its per-token values (`numbers`:
the rBridge score, trace NLL and bits per byte, the token statistics); the span-mask tasks'
numbers (`span_mask`: span letters weigh 1, the authors' pooled values).

May import: nothing from rbridge_tasks (numpy only), so the formula can be read and tested alone.
"""
