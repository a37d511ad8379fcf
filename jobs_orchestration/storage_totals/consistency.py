"""What the storage checks verify, per organization: its cached size equals the sum of its counted
datasets, and none of its cache rows is negative. One statement each for a whole batch of
organizations, so a refresh of every organization can check each one without a query per organization.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import Connection

from jobs_orchestration.storage_totals.rules import UNCOUNTED_DATASET_STATES, sql_list

SAMPLE = 20
"""Negative rows named per organization at most."""

ORGANIZATION_AND_DATASET_SIZES = f"""
SELECT org.id AS organization_id, o.size AS size, COALESCE(SUM(d.size), 0) AS datasets_size
FROM organizations org
LEFT JOIN organization_storage o ON o.organization_id = org.id
LEFT JOIN datasets ds ON ds.organization_id = org.id AND ds.state NOT IN {sql_list(UNCOUNTED_DATASET_STATES)}
LEFT JOIN dataset_storage d ON d.dataset_id = ds.id
WHERE org.id IN :organization_ids
GROUP BY org.id, o.size
"""

NEGATIVE_SIZES = """
SELECT 'package_storage' AS cache_table, organization_id, package_id AS id, size
FROM package_storage WHERE size < 0 AND organization_id IN :organization_ids
UNION ALL
SELECT 'dataset_storage', organization_id, dataset_id, size
FROM dataset_storage WHERE size < 0 AND organization_id IN :organization_ids
UNION ALL
SELECT 'organization_storage', organization_id, organization_id, size
FROM organization_storage WHERE size < 0 AND organization_id IN :organization_ids
"""


@dataclass(frozen=True)
class NegativeRow:
    table: str
    id: int
    size: int


@dataclass
class OrganizationConsistency:
    organization_id: int
    size: int | None
    """Its `organization_storage` row's size; None when it has no row."""
    datasets_size: int
    """The sum of its counted datasets' `dataset_storage` sizes."""
    negative_rows: int = 0
    negative_sample: list[NegativeRow] = field(default_factory=list)

    @property
    def matches_datasets(self) -> bool:
        return self.size is not None and self.size == self.datasets_size


def _statement(text: str) -> sa.TextClause:
    return sa.text(text).bindparams(sa.bindparam("organization_ids", expanding=True))


def check_organizations(
    connection: Connection, organization_ids: Iterable[int]
) -> dict[int, OrganizationConsistency]:
    """Each organization's figures; an id that is not an organization is left out."""
    ids = sorted({int(organization_id) for organization_id in organization_ids})
    if not ids:
        return {}
    found = {
        row.organization_id: OrganizationConsistency(
            row.organization_id, None if row.size is None else int(row.size), int(row.datasets_size)
        )
        for row in connection.execute(_statement(ORGANIZATION_AND_DATASET_SIZES), {"organization_ids": ids})
    }
    for row in connection.execute(_statement(NEGATIVE_SIZES), {"organization_ids": ids}):
        consistency = found.get(row.organization_id)
        if consistency is None:
            continue
        consistency.negative_rows += 1
        if len(consistency.negative_sample) < SAMPLE:
            consistency.negative_sample.append(NegativeRow(row.cache_table, int(row.id), int(row.size)))
    return found
