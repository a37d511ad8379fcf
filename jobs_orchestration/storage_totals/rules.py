"""The platform's storage rules, as its users see them today.

- A package's own size is the sum of its **source** files' sizes (view and other objects do not count).
- Packages in UNAVAILABLE, DELETING, DELETED or RESTORING count none of their own files.
- A package's cached size includes its descendants at any depth, but a package in DELETING, DELETED
  or RESTORING is *blocked*: it passes nothing up to its ancestors, and its own cached size is 0
  (it is going away or not there yet). An UNAVAILABLE collection still passes its descendants up.
- A dataset's size is the sum of its root packages' sizes (whatever the dataset's state).
- An organization's size is the sum of the sizes of its datasets that are not DELETING.

What the cache tables hold after a refresh of an organization (the original left stale rows behind):
- `package_storage`: one row per package of the organization whose size is not 0 (a missing row
  reads as 0, as it did in the original, which only wrote sized packages); rows of packages whose size
  fell to 0, of DELETED packages, and rows filed under the organization whose package is no longer in
  it (or no longer exists: the table has no foreign key) are removed; a row filed under another organization whose package is now in this one is moved.
- `dataset_storage`: one row per dataset of the organization; rows filed under the organization whose
  dataset is no longer in it are removed.
- `organization_storage`: one row for the organization.
"""

from __future__ import annotations

from jobs_orchestration.db.platform import DatasetState, PackageState

UNCOUNTED_PACKAGE_STATES = (
    PackageState.UNAVAILABLE,
    PackageState.DELETING,
    PackageState.DELETED,
    PackageState.RESTORING,
)
"""Packages in these states count none of their own files."""

BLOCKED_PACKAGE_STATES = (PackageState.DELETING, PackageState.DELETED, PackageState.RESTORING)
"""Packages in these states pass nothing up to their ancestors and are cached as 0."""

UNCACHED_PACKAGE_STATES = (PackageState.DELETED,)
"""Packages in these states have no cache row at all: they are tombstones."""

UNCOUNTED_DATASET_STATES = (DatasetState.DELETING,)
"""Datasets in these states do not count towards their organization's size."""

COUNTED_FILE_OBJECT_TYPE = "source"


def sql_list(states) -> str:
    """An SQL literal list of enum values; the values are our own constants, never user input."""
    return "(" + ", ".join(f"'{state.value}'" for state in states) + ")"
