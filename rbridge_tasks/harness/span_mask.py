"""`SpanMaskTask`: the lm-eval task behind every `rbridge_mask_<subset>` YAML (README, "Span-mask
tasks"): the authors' span-mask release scored two ways, `as_released` and consistent.

Both read the proxy over the question followed directly by the cleaned reasoning, tokenized as
lm-eval encodes it (a BOS where the tokenizer adds one). Every document is asked through the
package's one scoring path, `rbridge_document` requests answered by any model, so `hf-rbridge`
and stock backends give the same numbers.

`as_released` sums, like the authors' scorer, the logprob of prompt token i for every i >= 1
whose token i of the text tokenized WITHOUT special tokens overlaps a span: with a BOS, each
masked token adds its predecessor's logprob, which may be a question token. So the request's
context ends right before the first token any number needs (planned here with the proxy's
tokenizer, which the task reads from the model args); the rest of the question goes into the
request's "trace" part, where it is scored at weight 0 in the consistent numbers. Conditioning
is unchanged: the backends tokenize context and trace as one text and prepend nothing unless the
context is empty. Where the authors' cleaned text differs from the strictly parsed one (a span
across lines, nested or unmatched tags), the consistent numbers read another text: a second
request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from lm_eval.api.instance import Instance

from rbridge_tasks.backends.response import REQUEST_TYPE, DocumentResponse
from rbridge_tasks.backends.tokenizer import Encoding, ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.options import optional_str, parse_flag
from rbridge_tasks.formula.span_mask import released_numbers, span_numbers, span_token_weights
from rbridge_tasks.harness.options import reject_misspelled_keys
from rbridge_tasks.harness.task import DocumentTask
from rbridge_tasks.records.mask_rows import MaskRow, check_subset, load_mask_rows
from rbridge_tasks.records.span_tags import StrictSpans, released_spans, strict_spans

logger = logging.getLogger(__name__)
SHOWN = 5  # rows named in a warning


@dataclass(frozen=True)
class MaskRequest:
    context: str
    trace: str
    token_ids: np.ndarray  # the proxy tokens its answer must score, as planned


@dataclass(frozen=True)
class DocumentPlan:
    """What a document asks and how its answers become numbers.

    The consistent numbers come from the first request's answer, whose token spans plus
    `reasoning_offset` are relative to the strictly parsed reasoning (`letters` long, `inside`
    weighing 1); `as_released` sums the logprobs at `released_positions` of the answer to
    `requests[released_request]` (None: no token is masked, the sum is 0). Both are one
    request unless the two readings of the tags give different texts.
    """

    requests: tuple[MaskRequest, ...]
    reasoning_offset: int
    letters: int
    inside: tuple[tuple[int, int], ...]
    span_bytes: int
    released_request: int | None
    released_positions: np.ndarray
    released_words: int
    released_bytes: int


class SpanMaskTask(DocumentTask):
    """An lm-eval task over one subset of `trillionlabs/rbridge-mask` (`metadata.subset`)."""

    TEMPLATE = "_mask_template_yaml"

    def configure(self, metadata: dict[str, Any]) -> None:
        reject_misspelled_keys(metadata)
        self.subset = check_subset(str(metadata.get("subset")))
        self.mask_data = optional_str(metadata.get("mask_data"))
        self.strict_split = parse_flag(metadata, "strict_split", False)
        self._plans: dict[str, DocumentPlan] = {}
        self._tokenizer_name = ""

    def download(self, dataset_kwargs=None, **kwargs) -> None:
        rows, origin = load_mask_rows(self.subset, self.mask_data)
        tokenizer = ProxyTokenizer.from_metadata(self.config.metadata or {})
        self._tokenizer_name = tokenizer.name
        strict = [strict_spans(row.reasoning) for row in rows]
        plans = plan_documents(rows, strict, tokenizer)
        self._plans = {str(row.index): plan for row, plan in zip(rows, plans, strict=True)}
        self._report_tags(rows, strict)
        docs = [
            {
                "id": str(r.index),
                "subset": self.subset,
                "question": r.question,
                "reasoning": r.reasoning,
            }
            for r in rows
        ]
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        if isinstance(self.config.metadata, dict):  # reported in results["configs"][task]
            self.config.metadata.update(
                {
                    "mask_source": origin,
                    "mask_rows": len(rows),
                    "mask_rows_read_twice": sum(len(p.requests) == 2 for p in plans),
                    "mask_rows_untagged": sum(not s.tagged for s in strict),
                    "mask_rows_unmatched_tags": sum(bool(s.unmatched) for s in strict),
                    "mask_rows_tags_mark_nothing": sum(s.marks_nothing for s in strict),
                }
            )

    def _report_tags(self, rows: list[MaskRow], strict: list[StrictSpans]) -> None:
        """One warning per rule that changed what the tags say (README, "Span-mask tasks")."""
        pairs = list(zip(rows, strict, strict=True))
        for rule, named in (
            (
                "a tag without a partner, which the consistent numbers remove (it marks nothing)",
                [f"{r.where} (character {s.unmatched[0]})" for r, s in pairs if s.unmatched],
            ),
            (
                "tags that mark no letter, so the consistent numbers score the whole reasoning",
                [r.where for r, s in pairs if s.marks_nothing],
            ),
        ):
            if named:
                logger.warning(
                    "%s: %d row(s) have %s; as_released reads them as the authors' scorer "
                    "does: %s%s",
                    self.config.task, len(named), rule, "; ".join(named[:SHOWN]),
                    " ..." if len(named) > SHOWN else "",
                )  # fmt: skip

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        return [
            Instance(REQUEST_TYPE, doc=doc, arguments=(r.context, r.trace), idx=i, **kwargs)
            for i, r in enumerate(self._plans[doc["id"]].requests)
        ]

    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        plan = self._plans[doc["id"]]
        responses = [
            self._checked(doc, response, request)
            for response, request in zip(results, plan.requests, strict=True)
        ]
        answer = responses[0]
        spans = answer.spans.astype(np.int64) + plan.reasoning_offset
        weights = span_token_weights(plan.letters, plan.inside, spans)
        out = span_numbers(-answer.logprobs, weights, plan.span_bytes)
        counted: list[np.ndarray] = [weights[:, None]]  # how each answer's tokens count
        loglikelihood = 0.0
        if plan.released_request is not None:
            released = responses[plan.released_request]
            loglikelihood = float(released.logprobs[plan.released_positions].sum())
            picked = np.zeros((len(released.logprobs), 1))
            picked[plan.released_positions] = 1.0
            if plan.released_request == 0:
                counted[0] = np.hstack([weights[:, None], picked])
            else:
                counted.append(picked)
        out |= released_numbers(loglikelihood, plan.released_words, plan.released_bytes)
        for response, values in zip(responses, counted, strict=True):
            self._check_groups(doc, response, values)
        truncated = [r.truncated_tokens for r in responses if r.truncated_tokens is not None]
        if truncated:
            out["context_truncated_tokens"] = max(truncated)
        return out

    def _checked(self, doc: dict, response: Any, request: MaskRequest) -> DocumentResponse:
        response = self.checked(response)
        if not np.array_equal(response.token_ids, request.token_ids):
            raise RBridgeError(
                f"{self.config.task}: document {doc['id']!r}: the model scored other proxy "
                f"tokens than the task planned with the tokenizer {self._tokenizer_name!r}; pass "
                "--metadata tokenizer=NAME naming the model's own tokenizer (and the model's "
                "add_bos_token, if it sets one)"
            )
        return response

    def _check_groups(self, doc: dict, response: DocumentResponse, values: np.ndarray) -> None:
        """Stock backends: say so when tokens that count differently could only be scored
        together (each then carries the group's mean NLL)."""
        groups = response.groups
        if groups is None:
            return
        mixed = [g for g in np.unique(groups) if np.ptp(values[groups == g], axis=0).any()]
        if not mixed:
            return
        self.grouped(
            f"{self.config.task}: document {doc['id']!r}: the proxy tokenizer re-tokenizes the "
            f"text before {len(mixed)} group(s) of tokens differently, so lm-eval can only score "
            "each group as a whole; its tokens, counted differently by the span-mask numbers, "
            "share the group's mean NLL"
        )


def plan_documents(
    rows: list[MaskRow], strict: list[StrictSpans], tokenizer: ProxyTokenizer
) -> list[DocumentPlan]:
    """Each row's requests, from the proxy's tokenization of its text(s).

    Parameters
    ----------
    rows, strict : list
        The subset's rows and their strict readings.
    tokenizer : ProxyTokenizer
        The model's tokenizer, encoding as lm-eval does (the authors' prompt ids).

    Raises
    ------
    RBridgeError
        A row whose first needed token is the text's first (nothing conditions it), or a
        tokenizer whose offsets are out of text order, naming the row.
    """
    released = [released_spans(row.reasoning) for row in rows]
    texts = [row.question + r.text for row, r in zip(rows, released, strict=True)]
    encoded = tokenizer.encode(texts)
    plain = tokenizer.tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False
    )["offset_mapping"]
    differ = [i for i, (r, s) in enumerate(zip(released, strict, strict=True)) if r.text != s.text]
    strict_texts = {i: rows[i].question + strict[i].text for i in differ}
    strict_encoded = dict(zip(differ, tokenizer.encode(list(strict_texts.values())), strict=True))
    plans = []
    for i, row in enumerate(rows):
        question = len(row.question)
        mask = released_mask(plain[i], released[i].spans, question)
        needed = np.flatnonzero(mask[1 : min(len(encoded[i].ids), len(mask))]) + 1
        if i in strict_encoded:
            own = strict_encoded[i]
            requests = [_request(strict_texts[i], own, _reasoning_tokens(own, question), row)]
            if needed.size:
                requests.append(_request(texts[i], encoded[i], needed, row))
        else:
            wanted = np.union1d(needed, _reasoning_tokens(encoded[i], question))
            requests = [_request(texts[i], encoded[i], wanted, row)]
        released_request = len(requests) - 1 if needed.size else None
        first = requests[-1][1] if needed.size else 0
        plans.append(
            DocumentPlan(
                requests=tuple(request for request, _ in requests),
                reasoning_offset=len(requests[0][0].context) - question,
                letters=len(strict[i].text),
                inside=strict[i].inside,
                span_bytes=strict[i].span_bytes,
                released_request=released_request,
                released_positions=needed - first,
                released_words=released[i].words,
                released_bytes=released[i].bytes,
            )
        )
    return plans


def released_mask(
    offsets: list[tuple[int, int]], spans: tuple[tuple[int, int], ...] | None, question: int
) -> np.ndarray:
    """The authors' token mask over the text tokenized without special tokens: a token overlaps
    a span shifted by the question's length; without spans, it starts in the reasoning."""
    bounds = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    if spans is None:
        return bounds[:, 0] >= question
    ranges = np.asarray(spans, dtype=np.int64).reshape(-1, 2) + question
    overlap = np.minimum(bounds[:, 1, None], ranges[None, :, 1]) > np.maximum(
        bounds[:, 0, None], ranges[None, :, 0]
    )
    return overlap.any(axis=1)


def _reasoning_tokens(encoding: Encoding, question: int) -> np.ndarray:
    return np.flatnonzero(np.asarray([end for _, end in encoding.offsets]) > question)


def _request(
    text: str, encoding: Encoding, needed: np.ndarray, row: MaskRow
) -> tuple[MaskRequest, int]:
    """The request whose answer scores the tokens `needed` (and those after them), and the index
    of its first scored token: the context ends where the token before the first needed one
    ends, moved back while a needed token ends there too (pieces of one character share their
    offsets) so that the backend's rule, a token is scored when it ends after the context,
    scores it."""
    ends = np.asarray([end for _, end in encoding.offsets], dtype=np.int64)
    first = int(needed.min())
    while first > 0 and ends[first] <= ends[first - 1]:
        first -= 1
    if first == 0:
        raise RBridgeError(
            f"{row.where}, field 'question': the proxy tokenizer joins the whole question and "
            "the start of the reasoning into its first token, so nothing conditions that token"
        )
    cut = int(ends[first - 1])
    scored = np.flatnonzero(ends > cut)
    if not np.array_equal(scored, np.arange(first, first + len(scored))) or (
        needed.max() >= first + len(scored)
    ):
        raise RBridgeError(
            f"{row.where}: the proxy tokenizer's character offsets are out of text order here; "
            "the span-mask tasks need a tokenizer whose offsets follow the text"
        )
    ids = np.asarray(encoding.ids[first : first + len(scored)], dtype=np.int64)
    return MaskRequest(text[:cut], text[cut:], ids), first
