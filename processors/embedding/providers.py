"""Builds the configured provider (heavy imports happen inside the adapters, on start)."""

from __future__ import annotations

from processors.embedding.openai_provider import OpenAIProvider
from processors.embedding.ports import EmbeddingProvider
from processors.embedding.settings import EmbedderSettings


def open_provider(settings: EmbedderSettings) -> EmbeddingProvider:
    if settings.provider == "openai":
        return OpenAIProvider(
            settings.model,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout_s=settings.openai_timeout_s,
            max_retries=settings.openai_max_retries,
        ).start()
    from processors.embedding.torch_provider import TorchProvider

    return TorchProvider(
        settings.model, settings.model_path, settings.device, batch_size=settings.batch_size
    ).start()
