"""The SQL's totals equal an independent brute-force computation on random trees."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.schema import platform_metadata
from jobs_orchestration.storage_totals import refresh as refresh_module
from jobs_orchestration.storage_totals import refresh_all_organizations, refresh_organizations
from jobs_orchestration_tests.support.platform_tree import cached_sizes
from jobs_orchestration_tests.support.random_platform import PACKAGE_STATES, generate, load


@pytest.mark.parametrize("seed", range(6))
def test_random_trees_match_the_brute_force_totals(platform_db, seed):
    rng = random.Random(seed)
    platform = generate(rng, organizations=6)
    load(platform_db.engine, platform)

    batches = list(
        refresh_all_organizations(
            platform_db.engine, batch_size=rng.randint(1, 4), parallel_batches=rng.randint(1, 3)
        )
    )

    assert cached_sizes(platform_db.engine) == platform.expected()
    reported = [t.organization_id for batch in batches for t in batch.organizations]
    assert reported == sorted(platform.expected()["organization"])
    totals = {t.organization_id: t.total_bytes for batch in batches for t in batch.organizations}
    assert totals == platform.expected()["organization"]


@pytest.mark.parametrize("seed", range(3))
def test_refreshing_after_random_changes_resets_what_went_stale(platform_db, seed):
    rng = random.Random(1000 + seed)
    platform = generate(rng, organizations=4, packages_per_dataset=(3, 15))
    load(platform_db.engine, platform)
    refresh_organizations(platform_db.engine, platform.organizations)

    changed = rng.sample(sorted(platform.packages), k=len(platform.packages) // 3)
    with platform_db.engine.begin() as connection:
        for package_id in changed:
            dataset_id, parent_id, _ = platform.packages[package_id]
            state = rng.choice(PACKAGE_STATES)
            platform.packages[package_id] = (dataset_id, parent_id, state)
            connection.execute(
                sa.text("UPDATE packages SET state = :state WHERE id = :id"),
                {"state": state, "id": package_id},
            )
    refresh_organizations(platform_db.engine, platform.organizations)

    assert cached_sizes(platform_db.engine) == platform.expected()


@pytest.mark.parametrize("seed", range(2))
def test_sqlite_gives_the_same_totals_for_local_runs(tmp_path, seed):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    platform_metadata.create_all(engine)
    platform = generate(random.Random(2000 + seed), organizations=4)
    load(engine, platform)

    list(refresh_all_organizations(engine, batch_size=3))
    again = refresh_organizations(engine, platform.organizations, dry_run=True)

    assert cached_sizes(engine) == platform.expected()
    assert all(totals.rows_changed == 0 for totals in again.values())
    engine.dispose()


def test_an_organization_deleted_while_all_are_refreshed_is_left_out(platform_db, monkeypatch):
    platform = generate(random.Random(3000), organizations=4)
    load(platform_db.engine, platform)
    doomed = max(platform.organizations) + 1
    with platform_db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO organizations (id, node_id, name, created_at) "
                "VALUES (:id, 'N:organization:doomed', 'doomed', now())"
            ),
            {"id": doomed},
        )
    real_refresh = refresh_module.refresh_organizations

    def deleted_once_listed(engine, organization_ids, **options):
        if doomed in organization_ids:
            with engine.begin() as connection:
                connection.execute(sa.text("DELETE FROM organizations WHERE id = :id"), {"id": doomed})
        return real_refresh(engine, organization_ids, **options)

    monkeypatch.setattr(refresh_module, "refresh_organizations", deleted_once_listed)
    batches = list(refresh_all_organizations(platform_db.engine, batch_size=3, parallel_batches=2))

    assert [t.organization_id for batch in batches for t in batch.organizations] == sorted(
        platform.organizations
    )
    assert cached_sizes(platform_db.engine) == platform.expected()
