"""`make bench-categories`: categorizing 100,000 embedded errors against 50 categories.

The classifier's batch (`CategoryClassifier.classify`: the cosine to every category's centroid as
one matrix product, the lexical evidence as one weighted count per category, then the decision)
beside the reference, a plain numpy matrix product and argmax over the same vectors. The inputs
are what the index holds once errors are embedded: unit vectors (384 dimensions, as
all-MiniLM-L6-v2) and each error's evidence words, taken from the demo's error messages (their
extraction, once per error and cached by the index, is timed apart). Label texts get seeded random
vectors: no model is loaded, the classification is what is timed. Medians of 5 rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.common import Measurement, machine, write_result
from jobtrail.categories.classifier import CategoryClassifier, Thresholds
from jobtrail.categories.definitions import Category, CategorySet, load_categories
from jobtrail.categories.lexicon import evidence
from processors.fingerprint import fingerprint
from streams.demo.workload import Workload, WorkloadConfig

DIMENSION = 384
ROUNDS = 5


def fifty_categories(count: int) -> CategorySet:
    """The starter file's categories, repeated with numbered names up to `count`."""
    base = load_categories().categories
    made = [Category(f"{c.name} {i // len(base)}", c.description, c.examples)
            for i, c in enumerate(base * (count // len(base) + 1))][:count]  # fmt: skip
    return CategorySet(tuple(made), f"{count} categories")


def random_embed(seed: int) -> Callable[[Sequence[str]], list[list[float]]]:
    rng = np.random.default_rng(seed)

    def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = rng.standard_normal((len(texts), DIMENSION)).tolist()
        return vectors

    return embed


def median_s(run: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", type=int, default=100_000)
    parser.add_argument("--categories", type=int, default=50)
    args = parser.parse_args()
    n = args.errors
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    errors = [e.error for e in Workload(WorkloadConfig(jobs=20_000), seed=3).events() if e.error]
    started = time.perf_counter()
    words = [evidence(fingerprint(e).template, e.message) for e in errors[:n]]
    words = (words * (n // max(1, len(words)) + 1))[:n]
    extraction = time.perf_counter() - started
    per_error_words = extraction / min(n, len(errors)) * 1e6
    classifier = CategoryClassifier.build(
        fifty_categories(args.categories), random_embed(11), Thresholds(0.3, 0.0, 0.2)
    )
    centroids = classifier.centroids

    def reference() -> object:
        return (vectors @ centroids.T).argmax(axis=1)

    def classify() -> object:
        return classifier.classify(vectors, words)

    ref = Measurement("numpy matrix product + argmax (reference)", n, median_s(reference))
    ours = Measurement("CategoryClassifier.classify (vectors + words)", n, median_s(classify))
    semantic = Measurement(
        "  of which lexical off (lexical_weight 0)", n,
        median_s(lambda: CategoryClassifier(classifier.categories, centroids,
                                            classifier.vocabulary, classifier.word_weights,
                                            Thresholds(0.3, 0.0, 0.0)).classify(vectors, words)),
    )  # fmt: skip
    print(f"{n:,} embedded errors x {args.categories} categories, {DIMENSION} dimensions; "
          f"medians of {ROUNDS} rounds")  # fmt: skip
    for m in (ref, ours, semantic):
        print(f"  {m.name:48s} {m.seconds:7.3f} s  {m.events_per_s:12,.0f} errors/s  "
              f"{m.us_per_event:7.2f} us/error")  # fmt: skip
    print(f"  ratio to the reference: {ours.seconds / ref.seconds:.1f}x; target: under 2 s "
          f"({'met' if ours.seconds < 2 else 'missed'})")  # fmt: skip
    print(f"evidence words, once per error when the index first loads it: {per_error_words:.1f} "
          f"us/error")  # fmt: skip
    path = write_result("categories", {
        "machine": machine(), "errors": n, "categories": args.categories,
        "measurements": [m.as_dict() for m in (ref, ours, semantic)],
        "evidence_us_per_error": per_error_words,
    })  # fmt: skip
    print(f"written to {path}")


if __name__ == "__main__":
    main()
