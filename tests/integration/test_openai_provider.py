"""The OpenAI provider with the real openai client, over HTTP, against a real server process on
loopback (tests/fake_openai.py) that injects 429, 500, slow answers and outages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from processors.embedding.openai_provider import OpenAIProvider
from processors.embedding.ports import ProviderUnavailableError, RefusedText
from tests.conftest import REPO_ROOT
from tests.fake_openai import REFUSED_MARK, fake_vector


@pytest.fixture
def fake_openai() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", str(port), "--slow-s", "1.5"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(base + "/stats", timeout=1).read()
            break
        except OSError:
            assert time.monotonic() < deadline, "the fake OpenAI server did not start"
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(10)


def control(base: str, **settings: Any) -> None:
    request = urllib.request.Request(
        base + "/control", json.dumps(settings).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).read()


def stats(base: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(urllib.request.urlopen(base + "/stats", timeout=5).read())
    return result


def provider(base: str, **overrides: Any) -> OpenAIProvider:
    settings: dict[str, Any] = {"api_key": None, "base_url": base + "/v1", "timeout_s": 1.0,
                                "max_retries": 3, **overrides}  # fmt: skip
    return OpenAIProvider("text-embedding-3-small", **settings).start()


def test_retries_429_500_and_slow_answers_and_every_text_gets_its_vector(fake_openai: str) -> None:
    control(fake_openai, script=["429", "500", "slow", "ok"])
    texts = [f"TimeoutError: timed out after <duration> #{i}" for i in range(5)]
    vectors = provider(fake_openai).embed(texts)
    assert vectors == [pytest.approx(fake_vector(text, 8)) for text in texts]
    answers = stats(fake_openai)["answers"]
    assert answers == {"429": 1, "500": 1, "slow": 1, "ok": 1}


def test_an_outage_outlasting_the_retries_is_provider_unavailable(fake_openai: str) -> None:
    control(fake_openai, down=True)
    with pytest.raises(ProviderUnavailableError):
        provider(fake_openai, max_retries=1).embed(["x"])
    control(fake_openai, down=False)
    assert len(provider(fake_openai).embed(["x"])) == 1


def test_large_inputs_are_split_within_the_request_limits(fake_openai: str) -> None:
    texts = ["y" * 8000 for _ in range(80)]  # 640,000 characters: three requests
    vectors = provider(fake_openai).embed(texts)
    assert len(vectors) == 80
    assert stats(fake_openai)["answers"] == {"ok": 3}


def test_a_refused_text_is_isolated_and_the_rest_of_its_request_is_embedded(
    fake_openai: str,
) -> None:
    texts = [f"ValueError: bad value <*> #{i}" for i in range(16)]
    texts[11] = f"ValueError: {REFUSED_MARK} #11"
    embeddings = provider(fake_openai).embed(texts)
    assert len(embeddings) == 16
    refused = embeddings[11]
    assert isinstance(refused, RefusedText) and refused.reason == "provider_refused"
    assert "400" in refused.detail
    for index, text in enumerate(texts):
        if index != 11:
            assert embeddings[index] == pytest.approx(fake_vector(text, 8))
    answers = stats(fake_openai)["answers"]
    # Bisection: about log2(16) refused requests on the way down to the bad text, not 16.
    assert answers["400"] <= 5 and answers["ok"] <= 5
