"""The demo workload: a deterministic simulation of job systems emitting lifecycle events."""
