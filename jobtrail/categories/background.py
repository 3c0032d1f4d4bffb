"""What an error looks like when it belongs to no operational category: the classifier's
built-in counterweight to the user's categories.

A team lists the failures it wants counted (timeouts, memory, a network down, ...); the errors
left out are mostly bugs and bad input, and a sentence embedding puts them near whichever category
happens to be closest. These texts describe those in general terms (knowledge about errors, not
about anyone's categories): an error closer to them than to its best category, by
`background_margin`, is uncategorized. A background text close to one of the user's categories
(a team that does count validation errors) is dropped, so it never competes with that category.
"""

from __future__ import annotations

BACKGROUND_TEXTS: tuple[str, ...] = (
    "a bug in the program: a value of the wrong type, a missing key, attribute or variable, "
    "an index out of range",
    "the input data was invalid and could not be parsed, validated or converted",
    "a business rule rejected the request",
    "an assertion or invariant failed",
    "the operation is not supported or not implemented",
    "TypeError: undefined is not a function",
    "KeyError",
    "ValueError: invalid literal",
    "NullPointerException",
    "ValidationError: field required",
)
# A background text whose cosine to a category's centroid exceeds this describes that category.
OVERLAP = 0.6
