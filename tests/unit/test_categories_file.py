"""The categories file: the documented shape loads; every other shape is refused with an error
that names the file and the entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobtrail.categories.definitions import (
    MAX_EXAMPLES,
    CategoriesFileError,
    load_categories,
    parse_categories,
)

GOOD = """
categories:
  - name: Timeout
    description: an operation took longer than its time limit
    examples:          # optional, a handful at most
      - "Operation timed out after 30000 milliseconds with 0 bytes received"
  - name: Image processing error
    description: an image could not be decoded
"""


def test_the_documented_shape_loads() -> None:
    loaded = parse_categories(GOOD, "team.yaml")
    assert loaded.names == ["Timeout", "Image processing error"]
    assert loaded.categories[0].examples == (
        "Operation timed out after 30000 milliseconds with 0 bytes received",
    )
    assert loaded.categories[1].examples == ()


def test_the_starter_file_ships_and_loads() -> None:
    starter = load_categories()
    assert len(starter.categories) >= 10
    assert all(c.description and c.examples for c in starter.categories)


def test_the_digest_follows_the_content_not_the_formatting() -> None:
    same = parse_categories(GOOD.replace("# optional, a handful at most", ""))
    assert same.digest == parse_categories(GOOD).digest
    changed = parse_categories(GOOD.replace("decoded", "decoded or resized"))
    assert changed.digest != parse_categories(GOOD).digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("categories: [", "not valid YAML"),
        ("- name: x", "one top-level key, 'categories'"),
        ("categories: []", "non-empty list"),
        ("categories:\n  - just a string", "category #1: expected a mapping"),
        ("categories:\n  - description: d", "category #1: 'name' must be a non-empty string"),
        ("categories:\n  - name: A\n    description: d\n  - name: B\n",
         "category #2 'B': 'description' must be a non-empty string"),
        ("categories:\n  - name: A\n    description: d\n  - name: A\n    description: e\n",
         "category #2 'A' has the same name as category #1"),
        ("categories:\n  - name: A\n    description: d\n    example: [x]\n",
         "category #1 'A': unknown key(s) example"),
        ("categories:\n  - name: A\n    description: d\n    examples: x\n",
         "'examples' must be a list of non-empty strings"),
        ("categories:\n  - name: A\n    description: d\n    examples: ['', x]\n",
         "'examples' must be a list of non-empty strings"),
        ("categories:\n  - name: Uncategorized\n    description: d\n", "is reserved"),
        ("categories:\n  - name: A\n    description: d\n    examples: ["
         + ", ".join(f"e{i}" for i in range(MAX_EXAMPLES + 1)) + "]\n",
         f"at most {MAX_EXAMPLES}"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(CategoriesFileError, match=r"team\.yaml") as raised:
        parse_categories(text, "team.yaml")
    assert message in str(raised.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CategoriesFileError, match="cannot read the categories file"):
        load_categories(tmp_path / "nope.yaml")
