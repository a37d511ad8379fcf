import datetime as dt

import sqlalchemy as sa

from jobs_orchestration.db.bulk import bulk_insert
from jobs_orchestration.db.platform import Organization


def test_bulk_insert_streams_rows_through_copy(platform_db):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = ((i, f"N:organization:{i}", f'Org, "{i}"\n', now) for i in range(1, 120_001))
    with platform_db.begin() as connection:
        inserted = bulk_insert(
            connection, Organization.__table__, ["id", "node_id", "name", "created_at"], rows
        )
    assert inserted == 120_000
    with platform_db.begin() as connection:
        count, name = connection.execute(
            sa.select(sa.func.count(), sa.func.max(Organization.name)).where(Organization.id == 7)
        ).one()
    assert count == 1 and name == 'Org, "7"\n'


def test_bulk_insert_writes_nulls_and_booleans(tmp_path):
    from jobs_orchestration.db.engine import create_db_engine
    from jobs_orchestration.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bulk.db'}"
    upgrade(url, ["platform"])
    engine = create_db_engine(url)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as connection:
        assert (
            bulk_insert(
                connection,
                Organization.__table__,
                ["id", "node_id", "name", "created_at"],
                [(1, "N:o:1", "a", now)],
            )
            == 1
        )
        assert connection.execute(sa.select(sa.func.count()).select_from(Organization)).scalar() == 1
    engine.dispose()
