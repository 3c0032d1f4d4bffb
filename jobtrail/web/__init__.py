"""The web UI of `jobtrail serve`: server-rendered pages over the same query layer as the API."""
