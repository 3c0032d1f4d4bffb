"""`make fingerprint-accuracy`: group accuracy of `jobtrail fingerprint` on labeled corpora.

Each corpus is a TSV file of `template_id<TAB>message` (tests/data/fingerprint/ by default). The
messages go through the real command, in order, and group accuracy is computed as in the LogPAI
log-parsing benchmarks: a message counts as right when the set of messages sharing its
fingerprint is exactly the set sharing its true template. The bar is Drain's average, 0.865.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.common import REPO_ROOT, write_result

DRAIN_AVERAGE = 0.865


def group_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} labels but {len(predicted)} predictions")
    if not truth:
        return 1.0
    by_truth: dict[str, set[int]] = defaultdict(set)
    by_prediction: dict[str, set[int]] = defaultdict(set)
    for index, (label, guess) in enumerate(zip(truth, predicted, strict=True)):
        by_truth[label].add(index)
        by_prediction[guess].add(index)
    correct = 0
    for members in by_prediction.values():
        labels = {truth[i] for i in members}
        if len(labels) == 1 and by_truth[labels.pop()] == members:
            correct += len(members)
    return correct / len(truth)


def read_corpus(path: Path) -> tuple[list[str], list[str]]:
    labels, messages = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, sep, message = line.partition("\t")
        if not sep:
            raise SystemExit(f"{path}:{number}: expected template_id<TAB>message")
        labels.append(label)
        messages.append(message)
    return labels, messages


def fingerprints_of(messages: list[str]) -> list[str]:
    """Runs the real `jobtrail fingerprint` command, as users and evaluators do."""
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail.cli", "fingerprint"],
        input="".join(m + "\n" for m in messages), capture_output=True, text=True, check=True,
        cwd=REPO_ROOT,
    )  # fmt: skip
    return [line.split("\t", 1)[0] for line in done.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpora", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.corpora or sorted((REPO_ROOT / "tests/data/fingerprint").glob("*.tsv"))
    if not paths:
        raise SystemExit("no corpora: pass TSV files or add them to tests/data/fingerprint/")
    scores = {}
    for path in paths:
        labels, messages = read_corpus(path)
        scores[path.stem] = group_accuracy(labels, fingerprints_of(messages))
        print(f"{path.stem:24} {len(messages):6} messages {len(set(labels)):5} templates"
              f"  group accuracy {scores[path.stem]:.3f}")  # fmt: skip
    average = sum(scores.values()) / len(scores)
    print(f"{'average':24} {average:.3f} (Drain's average: {DRAIN_AVERAGE})")
    write_result("fingerprint-accuracy", {"scores": scores, "average": average})


if __name__ == "__main__":
    main()
