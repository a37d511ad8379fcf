"""The platform's storage rules, computed by the set-based SQL on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jobs_orchestration.db.platform import DatasetState, PackageState
from jobs_orchestration.storage_totals import Level, UnknownOrganization, refresh_organizations
from jobs_orchestration_tests.support.platform_tree import PlatformTree, cached_sizes


@pytest.fixture
def engine(platform_db):
    return platform_db.engine


@pytest.fixture
def tree(engine) -> PlatformTree:
    return PlatformTree(engine)


def test_one_package_with_a_source_file_caches_its_size(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    package = tree.package(dataset, files=(123,))

    totals = refresh_organizations(engine, [organization])[organization]

    cache = cached_sizes(engine)
    assert cache["package"] == {package: 123}
    assert cache["dataset"] == {dataset: 123}
    assert cache["organization"] == {organization: 123}
    assert totals.total_bytes == 123
    assert totals.levels[Level.PACKAGE].counts == {"packages": 1, "packages_with_files": 1, "files": 1}
    assert totals.rows_changed == 3


@pytest.mark.parametrize(
    ("state", "counted"),
    [
        (PackageState.READY, True),
        (PackageState.UPLOADED, True),
        (PackageState.PROCESSING, True),
        (PackageState.PROCESSING_FAILED, True),
        (PackageState.UNAVAILABLE, False),
        (PackageState.DELETING, False),
        (PackageState.RESTORING, False),
    ],
)
def test_package_states_that_count(engine, tree, state, counted):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    package = tree.package(dataset, state=state, files=(100,))

    refresh_organizations(engine, [organization])

    expected = 100 if counted else 0
    cache = cached_sizes(engine)
    assert cache["package"].get(package, 0) == expected
    assert cache["organization"] == {organization: expected}


def test_a_package_whose_only_file_is_a_view_counts_nothing(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    package = tree.package(dataset, view_files=(5000,))

    totals = refresh_organizations(engine, [organization])[organization]

    assert package not in cached_sizes(engine)["package"]
    assert totals.total_bytes == 0
    assert totals.levels[Level.PACKAGE].counts["files"] == 0


def test_nested_collections_count_their_descendants(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    top = tree.collection(dataset)
    tree.package(dataset, parent_id=top, files=(10,))
    middle = tree.collection(dataset, parent_id=top)
    tree.package(dataset, parent_id=middle, files=(900,))
    inner = tree.collection(dataset, parent_id=middle)
    deepest = tree.package(dataset, parent_id=inner, files=(3000,))

    refresh_organizations(engine, [organization])

    cache = cached_sizes(engine)
    assert cache["package"][top] == 3910
    assert cache["package"][middle] == 3900
    assert cache["package"][inner] == 3000
    assert cache["package"][deepest] == 3000
    assert cache["dataset"] == {dataset: 3910}
    assert cache["organization"] == {organization: 3910}


def test_a_deleting_collection_in_the_middle_passes_nothing_up(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    top = tree.collection(dataset)
    tree.package(dataset, parent_id=top, files=(10,))
    middle = tree.collection(dataset, parent_id=top, state=PackageState.DELETING)
    below = tree.package(dataset, parent_id=middle, files=(900,))

    refresh_organizations(engine, [organization])

    cache = cached_sizes(engine)
    assert cache["package"][top] == 10
    assert middle not in cache["package"]
    assert cache["package"][below] == 900
    assert cache["organization"] == {organization: 10}


def test_an_unavailable_collection_still_passes_its_descendants_up(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    top = tree.collection(dataset, state=PackageState.UNAVAILABLE)
    tree.package(dataset, parent_id=top, files=(70,))

    refresh_organizations(engine, [organization])

    assert cached_sizes(engine)["package"][top] == 70


def test_deleted_packages_are_excluded_and_their_stale_rows_reset(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    top = tree.collection(dataset)
    kept = tree.package(dataset, parent_id=top, files=(5,))
    going = tree.package(dataset, parent_id=top, files=(40,))
    unavailable = tree.package(dataset, parent_id=top, files=(7,))
    refresh_organizations(engine, [organization])
    assert cached_sizes(engine)["package"][top] == 52

    tree.set_state(going, PackageState.DELETED)
    tree.set_state(unavailable, PackageState.UNAVAILABLE)
    totals = refresh_organizations(engine, [organization])[organization]

    cache = cached_sizes(engine)
    assert cache["package"] == {top: 5, kept: 5}
    assert cache["organization"] == {organization: 5}
    # top updated; the rows of the deleted and the now empty package removed; dataset and organization
    assert totals.levels[Level.PACKAGE].rows_changed == 3
    assert totals.rows_changed == 5


def test_a_package_whose_counted_files_disappear_is_reset_to_zero(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    top = tree.collection(dataset)
    emptied = tree.package(dataset, parent_id=top, files=(30,))
    viewed = tree.package(dataset, parent_id=top, files=(12,))
    kept = tree.package(dataset, parent_id=top, files=(4,))
    refresh_organizations(engine, [organization])

    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM files WHERE package_id = :id"), {"id": emptied})
        connection.execute(
            sa.text("UPDATE files SET object_type = 'view' WHERE package_id = :id"), {"id": viewed}
        )
    totals = refresh_organizations(engine, [organization])[organization]

    cache = cached_sizes(engine)
    assert cache["package"] == {top: 4, kept: 4}
    assert cache["dataset"] == {dataset: 4}
    assert cache["organization"] == {organization: 4}
    # top updated, both emptied rows removed; dataset and organization updated
    assert totals.levels[Level.PACKAGE].rows_changed == 3
    assert totals.rows_changed == 5


def test_an_organization_with_nothing_left_reports_the_rows_it_removed(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    package = tree.package(dataset, files=(8,))
    refresh_organizations(engine, [organization])

    tree.set_state(package, PackageState.DELETED)
    totals = refresh_organizations(engine, [organization])[organization]

    assert cached_sizes(engine)["package"] == {}
    assert totals.levels[Level.PACKAGE].rows_changed == 1
    assert totals.levels[Level.PACKAGE].counts == {"packages": 0, "packages_with_files": 0, "files": 0}


def test_a_row_whose_package_is_gone_is_removed(engine, tree):
    """package_storage has no foreign key to packages: a row that outlived its package (a refresh that
    raced the package's removal) is stale like any other and the next refresh removes it."""
    organization = tree.organization()
    dataset = tree.dataset(organization)
    kept = tree.package(dataset, files=(3,))
    refresh_organizations(engine, [organization])
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO package_storage (package_id, organization_id, dataset_id, size, updated_at) "
                "VALUES (:id, :organization, :dataset, 9, CURRENT_TIMESTAMP)"
            ),
            {"id": kept + 1000, "organization": organization, "dataset": dataset},
        )

    totals = refresh_organizations(engine, [organization])[organization]

    assert cached_sizes(engine)["package"] == {kept: 3}
    assert totals.levels[Level.PACKAGE].rows_changed == 1


def test_a_row_filed_under_another_organization_moves_with_its_package(engine, tree):
    first, second = tree.organization(), tree.organization()
    package = tree.package(tree.dataset(first), files=(60,))
    refresh_organizations(engine, [first])
    target = tree.dataset(second)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE packages SET organization_id = :organization, dataset_id = :dataset WHERE id = :id"
            ),
            {"organization": second, "dataset": target, "id": package},
        )

    totals = refresh_organizations(engine, [second])[second]
    refresh_organizations(engine, [first])

    with engine.connect() as connection:
        filed = connection.execute(
            sa.text("SELECT organization_id, dataset_id, size FROM package_storage WHERE package_id = :id"),
            {"id": package},
        ).all()
    assert filed == [(second, target, 60)]
    assert totals.levels[Level.PACKAGE].rows_changed == 1
    assert cached_sizes(engine)["organization"] == {first: 0, second: 60}


def test_a_second_refresh_changes_no_rows(engine, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(1, 2, 3))
    refresh_organizations(engine, [organization])

    assert refresh_organizations(engine, [organization])[organization].rows_changed == 0


def test_empty_organizations_datasets_and_collections(engine, tree):
    empty_organization = tree.organization()
    organization = tree.organization()
    empty_dataset = tree.dataset(organization)
    dataset = tree.dataset(organization)
    outer = tree.collection(dataset)
    tree.collection(dataset, parent_id=outer)

    totals = refresh_organizations(engine, [empty_organization, organization])

    cache = cached_sizes(engine)
    assert cache["organization"] == {empty_organization: 0, organization: 0}
    assert cache["dataset"] == {empty_dataset: 0, dataset: 0}
    assert cache["package"] == {}
    assert totals[empty_organization].levels[Level.DATASET].counts["datasets"] == 0


def test_a_deleting_dataset_keeps_its_size_but_does_not_count_for_the_organization(engine, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(11,))
    deleting = tree.dataset(organization, state=DatasetState.DELETING)
    tree.package(deleting, files=(1000,))

    refresh_organizations(engine, [organization])

    cache = cached_sizes(engine)
    assert cache["dataset"][deleting] == 1000
    assert cache["organization"] == {organization: 11}


def test_two_organizations_never_mix(engine, tree):
    first, second = tree.organization(), tree.organization()
    tree.package(tree.dataset(first), files=(100,))
    tree.package(tree.dataset(second), files=(20,))

    totals = refresh_organizations(engine, [first, second])

    assert cached_sizes(engine)["organization"] == {first: 100, second: 20}
    assert (totals[first].total_bytes, totals[second].total_bytes) == (100, 20)


def test_refreshing_one_organization_leaves_another_untouched(engine, tree):
    first, second = tree.organization(), tree.organization()
    first_package = tree.package(tree.dataset(first), files=(100,))
    tree.package(tree.dataset(second), files=(20,))
    refresh_organizations(engine, [first, second])
    before = cached_sizes(engine)

    tree.file(first_package, 1)
    tree.package(tree.dataset(second), files=(5,))
    refresh_organizations(engine, [first])

    after = cached_sizes(engine)
    assert after["organization"] == {first: 101, second: 20}
    assert {k: v for k, v in after["package"].items() if k != first_package} == {
        k: v for k, v in before["package"].items() if k != first_package
    }


def test_a_cycle_in_the_parent_links_does_not_hang(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    root = tree.package(dataset, files=(3,))
    first = tree.collection(dataset)
    second = tree.package(dataset, parent_id=first, files=(8,))
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE packages SET parent_id = {second} WHERE id = {first}")

    refresh_organizations(engine, [organization])

    cache = cached_sizes(engine)
    assert cache["package"] == {root: 3, first: 8, second: 8}
    assert cache["organization"] == {organization: 3}


def test_dry_run_reports_the_figures_and_writes_nothing(engine, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(123, 7))

    totals = refresh_organizations(engine, [organization], dry_run=True)[organization]

    assert totals.dry_run
    assert totals.total_bytes == 130
    assert totals.rows_changed == 3
    assert cached_sizes(engine) == {"package": {}, "dataset": {}, "organization": {}}


def test_dry_run_of_one_level_computes_the_levels_below(engine, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(9,))

    totals = refresh_organizations(engine, [organization], levels=[Level.ORGANIZATION], dry_run=True)

    assert totals[organization].total_bytes == 9
    assert cached_sizes(engine)["organization"] == {}


def test_levels_refreshed_one_by_one_read_the_cache_below(engine, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(40,))

    for level in (Level.PACKAGE, Level.DATASET, Level.ORGANIZATION):
        refresh_organizations(engine, [organization], levels=[level])

    assert cached_sizes(engine)["organization"] == {organization: 40}


def test_an_unknown_organization_is_an_error_and_changes_nothing(engine, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(1,))

    with pytest.raises(UnknownOrganization, match="organization_id 987654"):
        refresh_organizations(engine, [organization, 987654])

    assert cached_sizes(engine)["organization"] == {}


def test_dataset_figures_are_the_same_from_this_refresh_or_from_the_cache(engine, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    tree.package(dataset, files=(40,))
    tree.collection(dataset)

    together = refresh_organizations(engine, [organization], dry_run=True)[organization]
    refresh_organizations(engine, [organization], levels=[Level.PACKAGE])
    alone = refresh_organizations(engine, [organization], levels=[Level.DATASET])[organization]

    assert alone.levels[Level.DATASET] == together.levels[Level.DATASET]
    assert alone.levels[Level.DATASET].counts == {"datasets": 1, "root_packages": 2}
