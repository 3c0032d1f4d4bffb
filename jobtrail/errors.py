"""The root exception and its typed subclasses.

Every error says whether retrying the same operation can help (`retryable`), so callers decide
between backing off and routing the input to a dead-letter topic without parsing messages.
"""


class JobtrailError(Exception):
    """Root of every error jobtrail raises on purpose."""

    retryable: bool = False


class ConfigurationError(JobtrailError):
    """A setting is missing or inconsistent; fix the configuration, retrying will not help."""


class SchemaError(JobtrailError):
    """Bytes or values that do not fit the event contract. Never retryable: the input is bad."""


class UnknownSchemaError(SchemaError):
    """The message names a writer schema this reader does not know."""


class CorruptMessageError(SchemaError):
    """Truncated, corrupted or wrongly framed bytes."""


class EncodeError(SchemaError):
    """A value does not match the schema's types (raised when encoding)."""


class KafkaUnavailableError(JobtrailError):
    """The broker could not be reached in the allotted time; retrying later can help."""

    retryable = True


class DeliveryError(JobtrailError):
    """The broker refused or failed to persist a record."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class MessageTooLargeError(DeliveryError):
    """A record exceeds a producer's or the broker's message size limit; the same record will
    never fit, so retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TopicDriftError(JobtrailError):
    """Existing topics differ from the catalog in ways `topics apply` does not change."""
