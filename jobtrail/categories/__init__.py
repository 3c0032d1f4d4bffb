"""Error categories: the user's list (a YAML file), a classifier that gives every distinct error
one category or none from its vector and text, and the counts per category the API, the CLI and
Prometheus serve."""
