"""Make writing `package_storage` cheaper: no foreign key to `packages`, no index on `dataset_id`.

A first storage refresh writes a row for every sized package, and each row paid a foreign-key check
(a lookup and a row lock on `packages`) and an entry in three indexes. Neither of the two dropped here
earned its cost:
- the foreign key's only work was to cascade a removed package into its cache row. Packages are
  removed only as DELETED tombstones, which have no cache row (the deletion removes it when it closes
  the package), and `remove_dataset` now also removes cache rows by package id before their packages.
  A row that outlives its package anyway (a refresh racing a deletion) is filed under its
  organization, and the next refresh of that organization removes it with the other stale rows.
- no query reads `package_storage` by `dataset_id`: the refresh finds an organization's rows by
  `organization_id`, the deletions by `package_id` (the primary key).

Revision ID: platform_0003_package_storage
Revises: platform_0002_changelog_timeline
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "platform_0003_package_storage"
down_revision: str | None = "platform_0002_changelog_timeline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_package_storage_package_id_packages"


def upgrade() -> None:
    op.drop_index("ix_package_storage_dataset_id", table_name="package_storage")
    with op.batch_alter_table("package_storage") as table:
        table.drop_constraint(FOREIGN_KEY, type_="foreignkey")


def downgrade() -> None:
    # A cache row of a package that is gone would refuse the foreign key; it says nothing anyway.
    op.execute(
        "DELETE FROM package_storage WHERE NOT EXISTS "
        "(SELECT 1 FROM packages WHERE packages.id = package_storage.package_id)"
    )
    with op.batch_alter_table("package_storage") as table:
        table.create_foreign_key(FOREIGN_KEY, "packages", ["package_id"], ["id"], ondelete="CASCADE")
    op.create_index("ix_package_storage_dataset_id", "package_storage", ["dataset_id"], unique=False)
