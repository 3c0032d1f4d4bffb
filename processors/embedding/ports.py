"""The port every embedding provider implements (torch through sentence-transformers, the OpenAI
API or a compatible server)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from jobtrail.errors import JobtrailError


class ProviderUnavailableError(JobtrailError):
    """The provider did not answer, or answered with an error a later retry can fix (429, 5xx,
    timeouts): the batch is kept and tried again after a pause."""

    retryable = True


@dataclass(frozen=True, slots=True)
class RefusedText:
    """A text the provider refuses for what it is (the OpenAI API's 400): retrying cannot help,
    so its request becomes a dead letter while the rest of its batch is embedded."""

    reason: str
    detail: str


Embedding = Sequence[float] | RefusedText


class EmbeddingProvider(Protocol):
    @property
    def model(self) -> str:
        """The model name vectors are labelled with (and requests are filtered by)."""

    @property
    def max_chars(self) -> int:
        """The longest text the model takes without cutting it."""

    def embed(self, texts: Sequence[str]) -> Sequence[Embedding]:
        """One vector (or refusal) per text, in order; raises ProviderUnavailableError when the
        provider cannot answer at all."""
