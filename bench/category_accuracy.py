"""`make category-accuracy`: the category classifier on labeled real error messages.

tests/data/categories/labeled.tsv (`<category or uncategorized>\\t<message>`) with its categories
file, split in two halves by the SHA-256 of each message: thresholds (min score, min margin) are
calibrated on the calibration half and accuracy is reported on the other, which the calibration
never sees. The classifier and provider are the product's (`jobtrail categorize`): the configured
embedding provider (JOBTRAIL_EMBED_*, torch with the bundled all-MiniLM-L6-v2 by default).
Reference lines: the seed prototype's method (cosine to the category name, threshold 0.4) and the
centroid of name, description and examples with its best threshold, on the same split.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobtrail.categories.categorize import build_classifier, message_inputs, provider_embed
from jobtrail.categories.classifier import (
    NONE,
    CategoryClassifier,
    Matrix,
    Scores,
    Thresholds,
    _unit_rows,
)
from jobtrail.categories.definitions import UNCATEGORIZED, load_categories
from jobtrail.categories.settings import CategorySettings
from processors.embedding.providers import open_provider
from processors.embedding.settings import EmbedderSettings

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "categories"
SCORE_GRID = np.round(np.arange(0.20, 0.80, 0.01), 2)
MARGIN_GRID = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08)
LEXICAL_GRID = (0.0, 0.1, 0.2, 0.3)
BACKGROUND_GRID = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2)


@dataclass(frozen=True, slots=True)
class Labeled:
    truth: list[str]
    messages: list[str]
    scored: np.ndarray  # True: in the half accuracy is reported on


def read_labeled(path: Path) -> Labeled:
    truth, messages = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, message = line.partition("\t")
        if not sep:
            raise SystemExit(f"{path}:{number}: expected '<label>\\t<message>'")
        truth.append(label)
        messages.append(message)
    scored = np.array([int(hashlib.sha256(m.encode()).hexdigest(), 16) % 2 == 1 for m in messages])
    return Labeled(truth, messages, scored)


def predictions(classifier: CategoryClassifier, scores: Scores) -> list[str]:
    labels = classifier.decide(scores)
    return [classifier.name_of(int(i)) or UNCATEGORIZED for i in labels.index]


def accuracy(predicted: list[str], truth: list[str], rows: np.ndarray) -> float:
    hits = [p == t for p, t, keep in zip(predicted, truth, rows, strict=True) if keep]
    return sum(hits) / max(1, len(hits))


def calibrate(
    classifier: CategoryClassifier, vectors: Matrix, words: list[frozenset[str]], data: Labeled
) -> tuple[Thresholds, float]:
    """The thresholds with the best accuracy on the calibration half (the scored half unseen):
    lexical weight, min score, min margin and, with the background on, its margin."""
    names = classifier.categories.names
    truth = np.array([names.index(t) if t in names else NONE for t in data.truth])
    rows = ~data.scored
    with_background = classifier.thresholds.background_margin is not None
    best: tuple[float, Thresholds] | None = None
    for weight in LEXICAL_GRID:
        classifier.thresholds = Thresholds(0.0, 0.0, weight, 0.0 if with_background else None)
        scores = classifier.scores(
            vectors[rows], [w for w, r in zip(words, rows, strict=True) if r]
        )
        for background_margin in BACKGROUND_GRID if with_background else (None,):
            for min_score in SCORE_GRID:
                for min_margin in MARGIN_GRID:
                    candidate = Thresholds(float(min_score), min_margin, weight, background_margin)
                    classifier.thresholds = candidate
                    acc = float((classifier.decide(scores).index == truth[rows]).mean())
                    if best is None or acc > best[0] + 1e-9:
                        best = (acc, candidate)
    assert best is not None
    classifier.thresholds = best[1]
    return best[1], best[0]


def report(predicted: list[str], truth: list[str], rows: np.ndarray, names: list[str]) -> None:
    pairs = [(p, t) for p, t, keep in zip(predicted, truth, rows, strict=True) if keep]
    print(f"  {'category':32s} {'precision':>9s} {'recall':>7s} {'n':>4s}")
    for name in [*names, UNCATEGORIZED]:
        tp = sum(1 for p, t in pairs if p == name and t == name)
        said = sum(1 for p, _ in pairs if p == name)
        real = sum(1 for _, t in pairs if t == name)
        precision = f"{tp / said:.2f}" if said else "-"
        recall = f"{tp / real:.2f}" if real else "-"
        print(f"  {name[:32]:32s} {precision:>9s} {recall:>7s} {real:4d}")
    said_none = sum(1 for p, _ in pairs if p == UNCATEGORIZED) / max(1, len(pairs))
    real_none = sum(1 for _, t in pairs if t == UNCATEGORIZED) / max(1, len(pairs))
    print(f"  uncategorized rate: {said_none:.3f} predicted, {real_none:.3f} labeled")


def naive_references(
    classifier: CategoryClassifier, vectors: Matrix, data: Labeled, embed_names: Matrix
) -> None:
    """The prototype (name cosine >= 0.4) and the plain centroid at its best threshold."""
    semantic = _unit_rows(vectors) @ _unit_rows(embed_names).T
    names = classifier.categories.names
    prototype = [names[int(i)] if s >= 0.4 else UNCATEGORIZED
                 for i, s in zip(semantic.argmax(1), semantic.max(1), strict=True)]  # fmt: skip
    print(f"reference, category names, threshold 0.4 (the prototype): "
          f"{accuracy(prototype, data.truth, data.scored):.3f}")  # fmt: skip
    plain = _unit_rows(vectors) @ classifier.centroids.T
    best = 0.0
    for threshold in SCORE_GRID:
        guess = [names[int(i)] if s >= threshold else UNCATEGORIZED
                 for i, s in zip(plain.argmax(1), plain.max(1), strict=True)]  # fmt: skip
        best = max(best, accuracy(guess, data.truth, data.scored))
    print(f"reference, centroid without words, best threshold on the scored half: {best:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", type=Path, default=DATA / "labeled.tsv")
    parser.add_argument("--categories", type=Path, default=DATA / "categories.yaml")
    args = parser.parse_args()
    data = read_labeled(args.labeled)
    categories = load_categories(args.categories)
    unknown = set(data.truth) - {*categories.names, UNCATEGORIZED}
    if unknown:
        raise SystemExit(f"labels not in {args.categories}: {sorted(unknown)}")
    settings = CategorySettings()
    embedder = EmbedderSettings()
    started = time.perf_counter()
    provider = open_provider(embedder)
    thresholds = settings.thresholds()
    classifier = build_classifier(categories, provider, thresholds)
    vectors, words = message_inputs(data.messages, provider, classifier.dimension)
    names_vectors = np.asarray(provider_embed(provider)(categories.names), dtype=np.float32)
    elapsed = time.perf_counter() - started
    counts = Counter(data.truth)
    print(f"{len(data.messages)} labeled messages ({counts[UNCATEGORIZED]} uncategorized), "
          f"{len(categories.categories)} categories; model {embedder.provider}:{provider.model}; "
          f"embedded in {elapsed:.1f} s")  # fmt: skip
    print(f"calibration half {int((~data.scored).sum())} messages, scored half "
          f"{int(data.scored.sum())}")  # fmt: skip
    configured = predictions(classifier, classifier.scores(vectors, words))
    print(f"\nconfigured ({describe(thresholds)}): accuracy "
          f"{accuracy(configured, data.truth, data.scored):.3f} scored half, "
          f"{accuracy(configured, data.truth, ~data.scored):.3f} calibration half")  # fmt: skip
    found, on_calibration = calibrate(classifier, vectors, words, data)
    predicted = predictions(classifier, classifier.scores(vectors, words))
    print(f"calibrated on the calibration half: {describe(found)} "
          f"(accuracy there {on_calibration:.3f})")  # fmt: skip
    print(f"\nACCURACY (scored half, calibrated thresholds): "
          f"{accuracy(predicted, data.truth, data.scored):.3f}")  # fmt: skip
    report(predicted, data.truth, data.scored, categories.names)
    naive_references(classifier, vectors, data, names_vectors)
    wrong = [(t, p, m) for t, p, m, keep in zip(data.truth, predicted, data.messages,
             data.scored, strict=True) if keep and t != p]  # fmt: skip
    print(f"\nmisses on the scored half ({len(wrong)}):")
    for truth, guess, message in wrong:
        print(f"  {truth[:22]:22s} -> {guess[:22]:22s} {message[:90]}")


def describe(t: Thresholds) -> str:
    background = "off" if t.background_margin is None else f"{t.background_margin}"
    return (f"MIN_SCORE {t.min_score}, MIN_MARGIN {t.min_margin}, LEXICAL_WEIGHT "
            f"{t.lexical_weight}, BACKGROUND_MARGIN {background}")  # fmt: skip


if __name__ == "__main__":
    main()
