"""Prompts to token ids: plain text, or chat messages through the tokenizer's chat template.

* A list of ``{"role": ..., "content": ...}`` messages is rendered with the chat template (generation
  prompt added), then tokenized without adding special tokens again (the template has them).
* A string is a user message when the tokenizer has a chat template and ``chat`` is not False
  (instruct models answer far better inside their template); ``chat=False`` sends it verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Prompt = Any  # str | Sequence[Mapping[str, str]]


def is_messages(prompt: Any) -> bool:
    """True for one chat conversation (a non-empty list of role/content mappings)."""
    return (
        isinstance(prompt, Sequence)
        and not isinstance(prompt, (str, bytes))
        and len(prompt) > 0
        and all(isinstance(m, Mapping) and "role" in m for m in prompt)
    )


def is_batch(prompt: Any) -> bool:
    """True for a list of prompts (strings or conversations), as opposed to one prompt."""
    if isinstance(prompt, (str, bytes)) or is_messages(prompt):
        return False
    return isinstance(prompt, Sequence) and all(isinstance(p, str) or is_messages(p) for p in prompt)


def render(tokenizer: Any, prompt: Prompt, *, chat: bool | None = None, system: str | None = None) -> str:
    """The prompt text the model sees (chat template applied where it applies)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if is_messages(prompt):
        messages = list(prompt)
        if chat is False:
            raise TypeError("chat=False but the prompt is a list of chat messages")
    elif isinstance(prompt, str):
        if chat is False or (chat is None and not has_template):
            return prompt
        messages = [{"role": "user", "content": prompt}]
    else:
        raise TypeError(f"a prompt is a str or a list of chat messages, got {type(prompt).__name__}")
    if system is not None and not (messages and messages[0].get("role") == "system"):
        messages = [{"role": "system", "content": system}, *messages]
    if not has_template:
        raise ValueError("chat messages need a tokenizer with a chat template (tokenizer.chat_template is empty)")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(text)


def encode(tokenizer: Any, prompt: Prompt, *, chat: bool | None = None, system: str | None = None) -> list[int]:
    """Token ids of the prompt (see :func:`render`)."""
    text = render(tokenizer, prompt, chat=chat, system=system)
    templated = is_messages(prompt) or text != prompt
    ids = tokenizer(text, add_special_tokens=not templated)["input_ids"]
    return [int(i) for i in ids]
