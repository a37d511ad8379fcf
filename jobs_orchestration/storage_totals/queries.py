"""The set-based SQL of the storage totals. Every statement works on a batch of organizations at once
(`:organization_ids`) and runs on PostgreSQL and SQLite alike.

Each level is first computed into a temporary table, so the figures, the dry run and the write all read
one computation, and the level above can read it without the cache having been written. Each computed
row carries its `row_action` against the cache rows filed under the batch's organizations: 'insert'
(none yet), 'update' (it differs) or NULL (nothing to write). Changed rows are updated and new rows
inserted by a plain INSERT: on a first fill every row is new, and an upsert would pay a conflict
check for each of them. Only a row still filed under an organization outside the batch (its package
moved) conflicts; the `UPSERT_NEW_*` statements are the way round that.
"""

from __future__ import annotations

from jobs_orchestration.storage_totals.rules import (
    BLOCKED_PACKAGE_STATES,
    COUNTED_FILE_OBJECT_TYPE,
    UNCACHED_PACKAGE_STATES,
    UNCOUNTED_DATASET_STATES,
    UNCOUNTED_PACKAGE_STATES,
    sql_list,
)

BATCH_PACKAGES = "batch_packages"
"""A common table expression of the package sizes' statement, not a table."""
PACKAGE_SIZES = "storage_totals_package_sizes"
DATASET_SIZES = "storage_totals_dataset_sizes"
ORGANIZATION_SIZES = "storage_totals_organization_sizes"

_ROWS_TO_INSERT_AND_UPDATE = """SUM(CASE WHEN row_action = 'insert' THEN 1 ELSE 0 END) AS rows_to_insert,
       SUM(CASE WHEN row_action = 'update' THEN 1 ELSE 0 END) AS rows_to_update"""

_COUNTED_SOURCE_FILES_OF_P = f"""
FROM files f
WHERE f.package_id = p.id
  AND f.object_type = '{COUNTED_FILE_OBJECT_TYPE}'
  AND p.state NOT IN {sql_list(UNCOUNTED_PACKAGE_STATES)}
"""

# The batch's packages, each with its own counted files, held once (MATERIALIZED) for the walk, which
# reads it at every step instead of the whole packages table. Files are reached by one index probe per
# package: a join would scan the files index (or table) from its start in every batch, a cost that
# grows with every other organization's files. (Not a temporary table: writing it, and analyzing it so
# the next statement is planned well, cost as much as the walk itself.)
_BATCH_PACKAGES_POSTGRESQL = f"""
    SELECT p.id, p.parent_id, p.dataset_id, p.organization_id, p.state,
           CAST(own_files.bytes AS BIGINT) AS bytes, own_files.files
    FROM packages p
    CROSS JOIN LATERAL (SELECT SUM(f.size) AS bytes, COUNT(*) AS files {_COUNTED_SOURCE_FILES_OF_P}) own_files
    WHERE p.organization_id IN :organization_ids"""

# SQLite has no LATERAL: two correlated subqueries probe the same index pages.
_BATCH_PACKAGES_PORTABLE = f"""
    SELECT p.id, p.parent_id, p.dataset_id, p.organization_id, p.state,
           CAST((SELECT SUM(f.size) {_COUNTED_SOURCE_FILES_OF_P}) AS BIGINT) AS bytes,
           (SELECT COUNT(*) {_COUNTED_SOURCE_FILES_OF_P}) AS files
    FROM packages p
    WHERE p.organization_id IN :organization_ids"""


# The path of packages walked so far stops a cycle in the parent links. PostgreSQL keeps it as an
# integer array; SQLite has no arrays, so there it is a string ",id,id," searched with LIKE (slower on
# PostgreSQL than the array).
_ARRAY_PATH = {"start": "ARRAY[package_id]", "extend": "w.path || p.id", "excludes": "p.id <> ALL (w.path)"}
_STRING_PATH = {
    "start": "',' || package_id || ','",
    "extend": "w.path || p.id || ','",
    "excludes": "w.path NOT LIKE '%,' || p.id || ',%'",
}


def compute_package_sizes(dialect_name: str) -> str:
    if dialect_name == "postgresql":
        return _COMPUTE_PACKAGE_SIZES.format(batch=_BATCH_PACKAGES_POSTGRESQL, **_ARRAY_PATH)
    return _COMPUTE_PACKAGE_SIZES.format(batch=_BATCH_PACKAGES_PORTABLE, **_STRING_PATH)


# Only packages whose size is not zero have a cache row (a missing row reads as 0): most of the cost
# of a first refresh is writing rows, and a zero row says nothing a missing one does not.
# Each package's counted files walk up the tree, one level per step, through packages that are not
# blocked; a package's size is what reaches it. Trees are shallow, so the walk is a few steps long.
# Most packages with files are leaves, and a leaf cannot be on a cycle: their files are summed per
# parent and walk on from there as one row, which keeps the walk to a fraction of its rows.
# (compute_package_sizes fills the batch and path placeholders; other braces are doubled.)
_COMPUTE_PACKAGE_SIZES = f"""
CREATE TEMPORARY TABLE {PACKAGE_SIZES} AS
WITH RECURSIVE {BATCH_PACKAGES} AS MATERIALIZED ({{batch}}
),
parent_ids AS MATERIALIZED (
    SELECT DISTINCT parent_id FROM {BATCH_PACKAGES} WHERE parent_id IS NOT NULL
),
-- The only packages the walk can step into: parents that are not blocked, a fraction of the batch.
open_parents AS MATERIALIZED (
    SELECT p.id, p.parent_id, p.dataset_id
    FROM {BATCH_PACKAGES} p
    JOIN parent_ids ON parent_ids.parent_id = p.id
    WHERE p.state NOT IN {sql_list(BLOCKED_PACKAGE_STATES)}
),
own AS (
    SELECT b.id AS package_id, b.parent_id, b.dataset_id, b.bytes, b.files,
           CASE WHEN parent_ids.parent_id IS NULL THEN 1 ELSE 0 END AS is_leaf
    FROM {BATCH_PACKAGES} b
    LEFT JOIN parent_ids ON parent_ids.parent_id = b.id
    WHERE b.files > 0
),
from_leaves AS (
    SELECT p.id AS package_id, p.parent_id, p.dataset_id,
           CAST(SUM(o.bytes) AS BIGINT) AS bytes, CAST(SUM(o.files) AS BIGINT) AS files
    FROM own o
    JOIN open_parents p ON p.id = o.parent_id AND p.dataset_id = o.dataset_id
    WHERE o.is_leaf = 1
    GROUP BY p.id, p.parent_id, p.dataset_id
),
walk (package_id, parent_id, dataset_id, bytes, files, path) AS (
    SELECT package_id, parent_id, dataset_id, bytes, files, {{start}}
    FROM own
    WHERE is_leaf = 0
    UNION ALL
    SELECT package_id, parent_id, dataset_id, bytes, files, {{start}}
    FROM from_leaves
    UNION ALL
    SELECT p.id, p.parent_id, p.dataset_id, w.bytes, w.files, {{extend}}
    FROM walk w
    JOIN open_parents p ON p.id = w.parent_id AND p.dataset_id = w.dataset_id
    WHERE {{excludes}}
),
reached AS (
    SELECT package_id, CAST(SUM(bytes) AS BIGINT) AS bytes, CAST(SUM(files) AS BIGINT) AS files
    FROM walk
    GROUP BY package_id
),
computed AS (
    -- Nothing walks into a leaf: its size is its own files'. Whatever else nothing reached has no
    -- counted files of its own (a package with some starts the walk), so its own figures are 0 too.
    SELECT p.id AS package_id, p.organization_id, p.dataset_id, p.parent_id,
           COALESCE(r.bytes, p.bytes, 0) AS size, COALESCE(r.files, p.files, 0) AS files,
           CASE WHEN p.files > 0 THEN 1 ELSE 0 END AS has_counted_files
    FROM {BATCH_PACKAGES} p
    LEFT JOIN reached r ON r.package_id = p.id
    WHERE p.state NOT IN {sql_list(UNCACHED_PACKAGE_STATES)}
)
SELECT c.*,
       CASE WHEN c.size = 0 THEN NULL
            WHEN cached.package_id IS NULL THEN 'insert'
            WHEN cached.size <> c.size
                 OR cached.organization_id <> c.organization_id
                 OR cached.dataset_id <> c.dataset_id
            THEN 'update' END AS row_action
FROM computed c
-- Only this batch's rows, which the index on organization_id finds without reading the whole table;
-- a row still filed under another organization reads as new (see UPSERT_NEW_PACKAGE_ROWS).
LEFT JOIN (SELECT package_id, organization_id, dataset_id, size FROM package_storage
           WHERE organization_id IN :organization_ids) cached ON cached.package_id = c.package_id
"""

PACKAGE_FIGURES = f"""
SELECT organization_id,
       COUNT(*) AS packages,
       SUM(has_counted_files) AS packages_with_files,
       COALESCE(SUM(CASE WHEN parent_id IS NULL THEN files END), 0) AS files,
       COALESCE(SUM(CASE WHEN parent_id IS NULL THEN size END), 0) AS total_bytes,
       {_ROWS_TO_INSERT_AND_UPDATE}
FROM {PACKAGE_SIZES}
GROUP BY organization_id
"""

STALE_PACKAGE_ROWS = f"""
FROM package_storage
WHERE organization_id IN :organization_ids
  AND NOT EXISTS (
      SELECT 1 FROM {PACKAGE_SIZES} s WHERE s.package_id = package_storage.package_id AND s.size > 0
  )
"""

INSERT_NEW_PACKAGE_ROWS = f"""
INSERT INTO package_storage (package_id, organization_id, dataset_id, size, updated_at)
SELECT package_id, organization_id, dataset_id, size, :now
FROM {PACKAGE_SIZES}
WHERE row_action = 'insert'
"""

UPSERT_NEW_PACKAGE_ROWS = (
    INSERT_NEW_PACKAGE_ROWS
    + """ON CONFLICT (package_id) DO UPDATE SET
    organization_id = excluded.organization_id,
    dataset_id = excluded.dataset_id,
    size = excluded.size,
    updated_at = excluded.updated_at
"""
)

UPDATE_CHANGED_PACKAGE_ROWS = f"""
UPDATE package_storage
SET organization_id = s.organization_id, dataset_id = s.dataset_id, size = s.size, updated_at = :now
FROM {PACKAGE_SIZES} s
WHERE s.package_id = package_storage.package_id AND s.row_action = 'update'
"""


# A dataset's root packages are the batch's packages without a parent that are not DELETED (those have
# no cache row). This refresh's package sizes list exactly these packages; the cache lists only the
# sized ones, so reading from it takes the roots from the packages table.
_ROOTS_OF_THIS_REFRESH = f"""
    SELECT dataset_id, CAST(SUM(size) AS BIGINT) AS size, COUNT(*) AS root_packages
    FROM {PACKAGE_SIZES}
    WHERE parent_id IS NULL
    GROUP BY dataset_id"""

_ROOTS_FROM_THE_CACHE = f"""
    SELECT p.dataset_id, CAST(COALESCE(SUM(s.size), 0) AS BIGINT) AS size, COUNT(*) AS root_packages
    FROM packages p
    LEFT JOIN package_storage s ON s.package_id = p.id
    WHERE p.organization_id IN :organization_ids
      AND p.parent_id IS NULL
      AND p.state NOT IN {sql_list(UNCACHED_PACKAGE_STATES)}
    GROUP BY p.dataset_id"""


def compute_dataset_sizes(from_this_refresh: bool) -> str:
    """Package sizes come from this refresh's temporary table, or else from the `package_storage` cache."""
    roots = _ROOTS_OF_THIS_REFRESH if from_this_refresh else _ROOTS_FROM_THE_CACHE
    return f"""
CREATE TEMPORARY TABLE {DATASET_SIZES} AS
WITH roots AS ({roots}
)
SELECT d.id AS dataset_id, d.organization_id,
       CASE WHEN d.state IN {sql_list(UNCOUNTED_DATASET_STATES)} THEN 0 ELSE 1 END AS counted,
       COALESCE(roots.size, 0) AS size,
       COALESCE(roots.root_packages, 0) AS root_packages,
       CASE WHEN cached.dataset_id IS NULL THEN 'insert'
            WHEN cached.size <> COALESCE(roots.size, 0) OR cached.organization_id <> d.organization_id
            THEN 'update' END AS row_action
FROM datasets d
LEFT JOIN roots ON roots.dataset_id = d.id
LEFT JOIN (SELECT dataset_id, organization_id, size FROM dataset_storage
           WHERE organization_id IN :organization_ids) cached ON cached.dataset_id = d.id
WHERE d.organization_id IN :organization_ids
"""


DATASET_FIGURES = f"""
SELECT organization_id,
       COUNT(*) AS datasets,
       SUM(root_packages) AS root_packages,
       COALESCE(SUM(size), 0) AS total_bytes,
       {_ROWS_TO_INSERT_AND_UPDATE}
FROM {DATASET_SIZES}
GROUP BY organization_id
"""

STALE_DATASET_ROWS = f"""
FROM dataset_storage
WHERE organization_id IN :organization_ids
  AND NOT EXISTS (SELECT 1 FROM {DATASET_SIZES} s WHERE s.dataset_id = dataset_storage.dataset_id)
"""

INSERT_NEW_DATASET_ROWS = f"""
INSERT INTO dataset_storage (dataset_id, organization_id, size, updated_at)
SELECT dataset_id, organization_id, size, :now
FROM {DATASET_SIZES}
WHERE row_action = 'insert'
"""

UPSERT_NEW_DATASET_ROWS = (
    INSERT_NEW_DATASET_ROWS
    + """ON CONFLICT (dataset_id) DO UPDATE SET
    organization_id = excluded.organization_id,
    size = excluded.size,
    updated_at = excluded.updated_at
"""
)

UPDATE_CHANGED_DATASET_ROWS = f"""
UPDATE dataset_storage
SET organization_id = s.organization_id, size = s.size, updated_at = :now
FROM {DATASET_SIZES} s
WHERE s.dataset_id = dataset_storage.dataset_id AND s.row_action = 'update'
"""


def compute_organization_sizes(dataset_sizes: str) -> str:
    """`dataset_sizes` is the temporary table of this refresh, or the `dataset_storage` cache."""
    return f"""
CREATE TEMPORARY TABLE {ORGANIZATION_SIZES} AS
WITH totals AS (
    SELECT o.id AS organization_id,
           CAST(COALESCE(SUM(CASE WHEN d.state NOT IN {sql_list(UNCOUNTED_DATASET_STATES)}
                                  THEN s.size END), 0) AS BIGINT) AS size,
           COUNT(d.id) AS datasets,
           COALESCE(SUM(CASE WHEN d.state NOT IN {sql_list(UNCOUNTED_DATASET_STATES)}
                             THEN 1 ELSE 0 END), 0) AS counted_datasets
    FROM organizations o
    LEFT JOIN datasets d ON d.organization_id = o.id
    LEFT JOIN {dataset_sizes} s ON s.dataset_id = d.id
    WHERE o.id IN :organization_ids
    GROUP BY o.id
)
SELECT t.*,
       CASE WHEN cached.organization_id IS NULL THEN 'insert'
            WHEN cached.size <> t.size THEN 'update' END AS row_action
FROM totals t
LEFT JOIN organization_storage cached ON cached.organization_id = t.organization_id
"""


ORGANIZATION_FIGURES = f"""
SELECT organization_id, datasets, counted_datasets, size AS total_bytes,
       CASE WHEN row_action = 'insert' THEN 1 ELSE 0 END AS rows_to_insert,
       CASE WHEN row_action = 'update' THEN 1 ELSE 0 END AS rows_to_update
FROM {ORGANIZATION_SIZES}
"""

INSERT_NEW_ORGANIZATION_ROWS = f"""
INSERT INTO organization_storage (organization_id, size, updated_at)
SELECT organization_id, size, :now
FROM {ORGANIZATION_SIZES}
WHERE row_action = 'insert'
"""

UPSERT_NEW_ORGANIZATION_ROWS = (
    INSERT_NEW_ORGANIZATION_ROWS
    + """ON CONFLICT (organization_id) DO UPDATE SET
    size = excluded.size,
    updated_at = excluded.updated_at
"""
)

UPDATE_CHANGED_ORGANIZATION_ROWS = f"""
UPDATE organization_storage
SET size = s.size, updated_at = :now
FROM {ORGANIZATION_SIZES} s
WHERE s.organization_id = organization_storage.organization_id AND s.row_action = 'update'
"""

# Two refreshes of one organization never interleave; ids are locked in order so batches that
# overlap cannot deadlock. The lock is released when the transaction ends.
LOCK_ORGANIZATIONS_POSTGRESQL = """
SELECT s.id, pg_advisory_xact_lock(CAST(:lock_namespace AS INTEGER), s.id)
FROM (SELECT id FROM organizations WHERE id IN :organization_ids ORDER BY id) s
"""

EXISTING_ORGANIZATIONS = "SELECT id FROM organizations WHERE id IN :organization_ids"

ORGANIZATION_NAMES = "SELECT id, name FROM organizations WHERE id IN :organization_ids"

NEXT_ORGANIZATIONS = "SELECT id FROM organizations WHERE id > :after ORDER BY id LIMIT :limit"
