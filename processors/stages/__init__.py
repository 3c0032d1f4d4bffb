"""The processors' stages, one module each: a pure step over a batch of typed records, run by the
shell (`processors.shell`) under Faust or by the broker-free harness (`processors.harness`)."""
