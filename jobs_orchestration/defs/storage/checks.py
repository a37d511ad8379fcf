"""Checks over every organization's cached storage (not partitioned: partitioned checks are a preview
API in this Dagster version)."""

import dagster as dg
import sqlalchemy as sa

from jobs_orchestration.defs.storage.assets import STORAGE_POOL, organization_storage
from jobs_orchestration.resources import PlatformDatabase
from jobs_orchestration.storage_totals.rules import UNCOUNTED_DATASET_STATES, sql_list

SAMPLE = 20

ORGANIZATIONS_NOT_MATCHING_DATASETS = f"""
SELECT o.organization_id, o.size, COALESCE(SUM(d.size), 0) AS datasets_size
FROM organization_storage o
LEFT JOIN datasets ds ON ds.organization_id = o.organization_id AND ds.state NOT IN {sql_list(UNCOUNTED_DATASET_STATES)}
LEFT JOIN dataset_storage d ON d.dataset_id = ds.id
GROUP BY o.organization_id, o.size
HAVING o.size <> COALESCE(SUM(d.size), 0)
ORDER BY o.organization_id
"""

NEGATIVE_SIZES = """
SELECT 'package_storage' AS cache_table, package_id AS id, size FROM package_storage WHERE size < 0
UNION ALL
SELECT 'dataset_storage', dataset_id, size FROM dataset_storage WHERE size < 0
UNION ALL
SELECT 'organization_storage', organization_id, size FROM organization_storage WHERE size < 0
"""


@dg.asset_check(
    asset=organization_storage,
    pool=STORAGE_POOL,
    description="Every organization's cached size equals the sum of its datasets that are not DELETING",
)
def organization_storage_matches_its_datasets(platform_db: PlatformDatabase) -> dg.AssetCheckResult:
    with platform_db.engine.connect() as connection:
        rows = connection.execute(sa.text(ORGANIZATIONS_NOT_MATCHING_DATASETS)).all()
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "mismatched_organizations": len(rows),
            "sample": dg.MetadataValue.json(
                [
                    {"organization_id": r[0], "size": int(r[1]), "datasets_size": int(r[2])}
                    for r in rows[:SAMPLE]
                ]
            ),
        },
    )


@dg.asset_check(
    asset=organization_storage,
    pool=STORAGE_POOL,
    description="No package, dataset or organization has a negative cached size",
)
def storage_sizes_are_not_negative(platform_db: PlatformDatabase) -> dg.AssetCheckResult:
    with platform_db.engine.connect() as connection:
        rows = connection.execute(sa.text(NEGATIVE_SIZES)).all()
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "negative_rows": len(rows),
            "sample": dg.MetadataValue.json(
                [{"table": r[0], "id": r[1], "size": int(r[2])} for r in rows[:SAMPLE]]
            ),
        },
    )


storage_checks = [organization_storage_matches_its_datasets, storage_sizes_are_not_negative]
