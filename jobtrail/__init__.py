"""jobtrail: event-sourced streaming of background-job lifecycles on Apache Kafka."""

__version__ = "0.1.0"
