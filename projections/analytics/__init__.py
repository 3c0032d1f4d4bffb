"""Analytics read models: concurrency, errors with their vectors, lifecycle gaps and queues.

A projection like the others (projections/): a pure fold (`model.py`) fed by its own consumer
group over job-events, attempt-outcomes and error-vectors, stored in Redis (`redis_store.py`) in
generations, rebuilt by replaying the topics.
"""
