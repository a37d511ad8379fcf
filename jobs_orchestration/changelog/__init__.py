"""Dataset changelog events: validation, recording (a transactional outbox) and SNS publishing."""

from jobs_orchestration.changelog.events import (
    EVENT_TYPES,
    InvalidChangelogEvent,
    event_category,
    parse_event_timestamp,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "InvalidChangelogEvent",
    "event_category",
    "parse_event_timestamp",
    "validate_event",
]
