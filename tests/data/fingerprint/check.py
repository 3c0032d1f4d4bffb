"""Validate the fingerprint corpus: every *.tsv here has lines `template_id<TAB>message`, both
columns non-empty, and no message text appears under two template ids. Prints, per file, the
number of messages and templates (and how many templates have 3+ messages / one message).

Usage: python tests/data/fingerprint/check.py [DIR]   (exit status 1 when a file is invalid)
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

MAX_BYTES = 300 * 1024


def check_file(path: Path) -> tuple[Counter[str], list[str]]:
    """Per-template message counts of one file, and the problems found in it."""
    counts: Counter[str] = Counter()
    problems: list[str] = []
    owner: dict[str, str] = {}
    if path.stat().st_size > MAX_BYTES:
        problems.append(f"{path.name}: larger than {MAX_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return counts, [f"{path.name}: not UTF-8 ({exc})"]
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            if number != text.count("\n") + 1:
                problems.append(f"{path.name}:{number}: empty line")
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            problems.append(f"{path.name}:{number}: {len(columns)} columns, expected 2")
            continue
        template_id, message = columns
        if not template_id.strip() or not message.strip():
            problems.append(f"{path.name}:{number}: empty template id or message")
            continue
        if "\r" in line:
            problems.append(f"{path.name}:{number}: carriage return inside the line")
        if owner.setdefault(message, template_id) != template_id:
            problems.append(
                f"{path.name}:{number}: message also labelled {owner[message]!r}: {message[:80]!r}"
            )
        counts[template_id] += 1
    return counts, problems


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    files = sorted(folder.glob("*.tsv"))
    if not files:
        print(f"no .tsv files in {folder}")
        return 1
    all_problems: list[str] = []
    total_messages = total_templates = 0
    print(f"{'file':<18}{'messages':>9}{'templates':>10}{'3+ msgs':>9}{'single':>8}")
    for path in files:
        counts, problems = check_file(path)
        all_problems += problems
        messages = sum(counts.values())
        three_plus = sum(1 for n in counts.values() if n >= 3)
        singles = sum(1 for n in counts.values() if n == 1)
        total_messages += messages
        total_templates += len(counts)
        print(f"{path.name:<18}{messages:>9}{len(counts):>10}{three_plus:>9}{singles:>8}")
    print(f"{'total':<18}{total_messages:>9}{total_templates:>10}")
    for problem in all_problems:
        print("ERROR", problem)
    return 1 if all_problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
