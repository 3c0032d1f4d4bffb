"""The port every embedding provider implements (torch through sentence-transformers, the OpenAI
API or a compatible server)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from jobtrail.errors import JobtrailError


class ProviderUnavailableError(JobtrailError):
    """The provider did not answer, or answered with an error a later retry can fix (429, 5xx,
    timeouts): the batch is kept and tried again after a pause."""

    retryable = True


class EmbeddingProvider(Protocol):
    @property
    def model(self) -> str:
        """The model name vectors are labelled with (and requests are filtered by)."""

    @property
    def max_chars(self) -> int:
        """The longest text the model takes without cutting it."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises ProviderUnavailableError when it cannot."""
