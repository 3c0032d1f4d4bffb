"""What text a vectorize request is embedded from, within a provider's input limit."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.derived import VectorizeRequest


@dataclass(frozen=True, slots=True)
class EmbedText:
    text: str
    truncated: bool


@dataclass(frozen=True, slots=True)
class Unembeddable:
    """A request with nothing to embed: it becomes a dead letter, not a vector."""

    reason: str
    detail: str


def text_for(request: VectorizeRequest, max_chars: int) -> EmbedText | Unembeddable:
    """The template (the normalized error, what all its occurrences share), cut to `max_chars`.

    Characters, not tokens, bound the cut: cheap, provider-agnostic, and conservative when
    `max_chars` is set from the token limit at the worst case of one character per token.
    """
    return text_of_template(request.template, max_chars)


def text_of_template(template: str, max_chars: int) -> EmbedText | Unembeddable:
    text = " ".join(template.split())
    if not text:
        return Unembeddable("empty_text", "the template is empty or only whitespace")
    if len(text) > max_chars:
        return EmbedText(text[:max_chars], truncated=True)
    return EmbedText(text, truncated=False)
