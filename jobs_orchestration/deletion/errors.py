"""Why a deletion did not go ahead, and which errors are worth another attempt."""

from __future__ import annotations

from botocore.exceptions import ClientError

from jobs_orchestration.aws_s3 import TRANSIENT_S3_ERROR_CODES
from jobs_orchestration.connectivity import is_unreachable


class DeletionRefused(ValueError):
    """A permanent refusal, decided before anything is touched: retrying cannot help."""


def is_transient(error: BaseException) -> bool:
    """An error a later attempt may get past: throttling, timeouts, lost connections (to S3 or to the
    database). Anything else (a refusal, a bug, a permission) is permanent."""
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "") in TRANSIENT_S3_ERROR_CODES
    return is_unreachable(error)
