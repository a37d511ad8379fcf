import pytest
import sqlalchemy as sa

from jobs_orchestration.db.migrate import downgrade, upgrade
from jobs_orchestration.db.schema import email_parser_metadata, platform_metadata
from jobs_orchestration_tests.support.postgres import temporary_database

PLATFORM_TABLES = set(platform_metadata.tables)
EMAIL_PARSER_TABLES = set(email_parser_metadata.tables)


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.integration), "sqlite"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        with temporary_database("jobs_migrations") as url:
            yield url


def test_migrations_run_up_and_down(empty_database_url):
    upgrade(empty_database_url)
    assert table_names(empty_database_url) == PLATFORM_TABLES | EMAIL_PARSER_TABLES

    downgrade(empty_database_url)
    assert table_names(empty_database_url) == set()

    upgrade(empty_database_url)
    assert table_names(empty_database_url) == PLATFORM_TABLES | EMAIL_PARSER_TABLES


def test_each_database_gets_only_its_own_tables(empty_database_url):
    upgrade(empty_database_url, ["email_parser"])
    assert table_names(empty_database_url) == EMAIL_PARSER_TABLES


def test_upgrade_is_idempotent(empty_database_url):
    upgrade(empty_database_url)
    upgrade(empty_database_url)
    assert table_names(empty_database_url) == PLATFORM_TABLES | EMAIL_PARSER_TABLES


def test_an_unknown_domain_is_refused(empty_database_url):
    with pytest.raises(ValueError, match="unknown database domain"):
        upgrade(empty_database_url, ["billing"])
    assert table_names(empty_database_url) == set()


def test_migrated_schema_matches_the_models(database_url):
    """The migrations and the models never drift apart (the same check autogenerate runs)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, [platform_metadata, email_parser_metadata]) == []
    engine.dispose()


def test_the_snapshot_cleanup_updates_can_stay_hot(database_url):
    """The cleanup writes `deleted_at` then `purged_at` on every row it deletes: no index may name
    them, and the pages keep room for the new row versions."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            options = connection.execute(
                sa.text("SELECT reloptions FROM pg_class WHERE relname = 'snapshot_files'")
            ).scalar_one()
            index_definitions = connection.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = 'snapshot_files'")
            ).scalars()
            assert options == ["fillfactor=50"]
            assert not [d for d in index_definitions if "deleted_at" in d or "purged_at" in d]
    finally:
        engine.dispose()
