"""Which errors are worth another attempt: the one classification every retry layer uses.

**Transient** (a later attempt may succeed): throttling, timeouts, lost or refused connections, a
service's own 5xx errors, and the database's serialization failures and deadlocks (the transaction lost
a race; run again, it wins). **Permanent** (the same call fails the same way however often it is made):
data errors (a value too long or out of range), integrity errors, access denied, a missing bucket,
queue or topic, a malformed request, and anything not known to be transient: retrying an unknown error
only delays the failure a person has to look at.

The layers that use it: the AWS clients' own short retries (botocore's standard mode, which retries
the same throttling and connection errors), the per-entry retries of batch calls
(`jobs_orchestration.aws.batching`: S3 DeleteObjects, SNS PublishBatch, SQS's batch calls), which
keep each failure as a `Failure` so nobody reads a code back out of a message, the ops' retry policy (`jobs_orchestration.defs.retries`: a permanent error fails
the step at once), and the intake's acknowledgements (a call SQS never answered is kept for the next
tick).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy.exc
from botocore.exceptions import ClientError

from jobs_orchestration.connectivity import is_unreachable

TRANSIENT_AWS_ERROR_CODES = frozenset(
    {
        # throttling
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
        # the service's own trouble
        "InternalError",
        "InternalFailure",
        "InternalErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "KMSInternalException",
        "OperationAborted",
        # timeouts
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        # how batch responses record a lost connection or a 5xx for one entry
        "ConnectionError",
        "500",
        "502",
        "503",
        "504",
    }
)
"""AWS error codes, of a whole call or of one entry of a batch call, that a later attempt can get past."""

TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
        "57014",  # query_canceled (statement_timeout)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
    }
)
"""PostgreSQL error codes of a statement that may succeed when run again."""


def is_transient_code(code: str) -> bool:
    """True for an AWS error code (of a call, or of one entry of a batch response) worth retrying."""
    return code in TRANSIENT_AWS_ERROR_CODES


def aws_error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: BaseException) -> bool:
    """True when a later attempt of the same work may get past `error`; False for a permanent error."""
    if is_unreachable(error):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return is_transient_code(aws_error_code(error)) or status in (500, 502, 503, 504)
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return getattr(error.orig, "pgcode", None) in TRANSIENT_SQLSTATES
    return False


@dataclass(frozen=True)
class Failure:
    """Why one piece of work failed (a call, one entry of a batch call, one file): its kind (the AWS
    error code when there is one), a message for a person, and whether another attempt may succeed."""

    kind: str
    message: str
    transient: bool

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        """A raised error, classified by `is_transient`."""
        if isinstance(error, ClientError):
            message = error.response.get("Error", {}).get("Message", "") or str(error)
            return cls(aws_error_code(error) or "ClientError", message, is_transient(error))
        if isinstance(error, sqlalchemy.exc.DBAPIError):
            # The driver's own message without the SQL and its parameters (those may hold any value).
            first_line = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else ""
            return cls(type(error.orig).__name__, first_line, is_transient(error))
        return cls(type(error).__name__, str(error), is_transient(error))

    @classmethod
    def of_entry(cls, code: str, message: str = "", *, sender_fault: bool = False) -> Failure:
        """One entry of an AWS batch response: transient when its code is, unless the service says the
        entry itself was at fault (sent again, it fails again)."""
        return cls(code or "UnknownError", message, not sender_fault and is_transient_code(code))


def describe(error: BaseException) -> str:
    """`Kind: message` for a person, the AWS error code as kind when there is one."""
    return str(Failure.of(error))
