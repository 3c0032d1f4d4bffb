"""The user's categories file (JOBTRAIL_CATEGORIES_FILE), read and checked.

Exactly this shape; anything else is refused with an error that names the entry::

    categories:
      - name: Timeout
        description: an operation took longer than its time limit
        examples:          # optional, a handful at most
          - "Operation timed out after 30000 milliseconds with 0 bytes received"

The digest identifies a file's content: labels computed for one digest are redone for another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from jobtrail.errors import ConfigurationError

UNCATEGORIZED = "uncategorized"
NOT_EMBEDDED = "not_embedded"  # errors without a vector of the model yet
MAX_EXAMPLES = 20  # "a handful at most": past this the examples outweigh the description
MAX_TEXT_CHARS = 2000
STARTER = "starter.yaml"


class CategoriesFileError(ConfigurationError):
    """The categories file is missing, not YAML, or not of the expected shape."""


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    description: str
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CategorySet:
    categories: tuple[Category, ...]
    source: str  # the file it came from (for messages)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    @property
    def digest(self) -> str:
        """SHA-256 of the content that matters (names, descriptions, examples, in order)."""
        content = [[c.name, c.description, list(c.examples)] for c in self.categories]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def load_categories(path: str | Path | None = None) -> CategorySet:
    """The categories of `path`, or of the starter file shipped with jobtrail when None."""
    if path is None:
        starter = resources.files(__package__).joinpath(STARTER)
        return parse_categories(starter.read_text(encoding="utf-8"), str(starter))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CategoriesFileError(f"cannot read the categories file {path}: {exc}") from exc
    return parse_categories(text, str(path))


def parse_categories(text: str, source: str = "<categories>") -> CategorySet:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CategoriesFileError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != {"categories"}:
        raise CategoriesFileError(
            f"{source}: expected one top-level key, 'categories', holding a list of categories"
        )
    entries = doc["categories"]
    if not isinstance(entries, list) or not entries:
        raise CategoriesFileError(f"{source}: 'categories' must be a non-empty list")
    categories: list[Category] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        category = _category(entry, f"{source}: category #{index}")
        if category.name in seen:
            raise CategoriesFileError(
                f"{source}: category #{index} {category.name!r} has the same name as "
                f"category #{seen[category.name]}; names must be unique"
            )
        if category.name.casefold() in (UNCATEGORIZED, NOT_EMBEDDED):
            raise CategoriesFileError(
                f"{source}: category #{index}: {category.name!r} is reserved (errors that fit "
                f"no category are {UNCATEGORIZED!r}, those without a vector {NOT_EMBEDDED!r})"
            )
        seen[category.name] = index
        categories.append(category)
    return CategorySet(tuple(categories), source)


def _category(entry: Any, where: str) -> Category:
    if not isinstance(entry, dict):
        raise CategoriesFileError(f"{where}: expected a mapping with name and description")
    unknown = set(entry) - {"name", "description", "examples"}
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CategoriesFileError(f"{where}: 'name' must be a non-empty string")
    where = f"{where} {name!r}"
    if unknown:
        raise CategoriesFileError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            "a category has name, description and examples"
        )
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        raise CategoriesFileError(f"{where}: 'description' must be a non-empty string")
    examples = entry.get("examples") or []
    if not isinstance(examples, list) or not all(
        isinstance(e, str) and e.strip() for e in examples
    ):
        raise CategoriesFileError(f"{where}: 'examples' must be a list of non-empty strings")
    if len(examples) > MAX_EXAMPLES:
        raise CategoriesFileError(
            f"{where}: {len(examples)} examples; at most {MAX_EXAMPLES} (a handful is enough)"
        )
    for text in (name, description, *examples):
        if len(text) > MAX_TEXT_CHARS:
            raise CategoriesFileError(f"{where}: a text longer than {MAX_TEXT_CHARS} characters")
    return Category(name.strip(), " ".join(description.split()), tuple(e.strip() for e in examples))
