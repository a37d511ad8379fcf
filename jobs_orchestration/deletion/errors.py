"""Why a deletion did not go ahead."""

from __future__ import annotations


class DeletionRefused(ValueError):
    """A permanent refusal, decided before anything is touched: retrying cannot help."""
