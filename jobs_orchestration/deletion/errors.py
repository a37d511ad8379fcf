"""Why a deletion did not go ahead, and which errors are worth another attempt."""

from __future__ import annotations

import sqlalchemy.exc
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from jobs_orchestration.aws_s3 import TRANSIENT_S3_ERROR_CODES


class DeletionRefused(ValueError):
    """A permanent refusal, decided before anything is touched: retrying cannot help."""


def is_transient(error: BaseException) -> bool:
    """An error a later attempt may get past: throttling, timeouts, lost connections (to S3 or to the
    database). Anything else (a refusal, a bug, a permission) is permanent."""
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "") in TRANSIENT_S3_ERROR_CODES
    if isinstance(error, (ConnectionError, HTTPClientError, TimeoutError)):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
        )
    return False
