"""Paper-format traces (`--prompt paper`): the record of one JSON reply.

The scored trace is the decoded `reasoning` value with the confidences `json_reply.py` carries
over from the raw stream; nothing is stripped from it (the answer has its own key). The answer is
`final_answer`, read by the benchmark's answer checker as if the model had written "The answer
is <final_answer>" (a multiple-choice answer may also be an option's text; HumanEval's is the
code). A reply that breaks the format is asked for once more, then skipped, as the paper did.

The meta (`json_reply.reply_meta`) is shared with the released-layout reader, so the pack it
reads from our own released-layout files equals ours.
"""

from __future__ import annotations

from rbridge_tasks.questions.sources import Question, normalise_text
from rbridge_tasks.records.json_reply import ReplyFormatError, map_reasoning, reply_meta
from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.traces.answers import extract_answer, is_correct
from rbridge_tasks.traces.completions import Completion, GenerationBackend, GenerationRequest
from rbridge_tasks.traces.prompts import paper_prompt

BAD_FORMAT = "reply not in the paper's JSON format, twice"


def paper_answer(question: Question, final_answer: str) -> str | None:
    if question.answer_type == "code":
        return extract_answer(question, final_answer)
    answer = extract_answer(question, f"The answer is {final_answer}")
    if answer is None and question.answer_type == "choice":
        by_text = {normalise_text(text).casefold(): label for label, text in question.choices}
        answer = by_text.get(normalise_text(final_answer).casefold())
    return answer


def paper_record(
    question: Question,
    completion: Completion,
    backend: GenerationBackend,
    backend_label: str,
    humaneval_timeout: float,
) -> tuple[TraceRecord | None, str | None, str | None]:
    """(record, why it is skipped or None, what was wrong with the format or None)."""
    for attempt in (1, 2):
        try:
            mapped = map_reasoning(
                completion.text, completion.token_texts, completion.token_logprobs
            )
            break
        except ReplyFormatError as exc:
            if attempt == 2:
                return None, BAD_FORMAT, str(exc)
            prompt = paper_prompt(question)
            completion = next(iter(backend.complete([GenerationRequest(question.id, prompt)])))
    reply = mapped.reply
    answer = paper_answer(question, reply.final_answer)
    meta = {
        "prompt": completion.prompt,
        "system_prompt": paper_prompt(question).system,
        **reply_meta(completion.text, completion.token_texts, completion.token_logprobs, mapped),
        "finish_reason": completion.finish_reason,
        "backend": backend_label,
        "attempts": attempt,
    }
    if completion.token_ids is not None:
        meta["completion_token_ids"] = list(completion.token_ids)
    record = TraceRecord(
        id=question.id,
        benchmark=question.benchmark,
        question=question.question,
        trace=reply.reasoning,
        frontier_model=backend.model_name,
        token_texts=mapped.token_texts,
        token_logprobs=mapped.token_logprobs,
        answer=answer,
        correct=is_correct(question, answer, humaneval_timeout=humaneval_timeout),
        meta=meta,
    )
    return record, (None if reply.reasoning.strip() else "no reasoning in the reply"), None
