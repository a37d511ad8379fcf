"""The platform's tables: organizations, datasets, packages, files, time series, storage cache, changelog, audit log.

Revision ID: platform_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "platform_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("platform",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("trace_id", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column(
            "resource_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("packages_deleted", sa.Integer(), nullable=False),
        sa.Column("files_deleted", sa.BigInteger(), nullable=False),
        sa.Column("objects_deleted", sa.BigInteger(), nullable=False),
        sa.Column("bytes_deleted", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_audit_log")),
    )
    op.create_index(op.f("ix_job_audit_log_job_id"), "job_audit_log", ["job_id"], unique=False)
    op.create_index(
        "ix_job_audit_log_job_name_created_at", "job_audit_log", ["job_name", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_job_audit_log_organization_id"), "job_audit_log", ["organization_id"], unique=False
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("node_id", name=op.f("uq_organizations_node_id")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=False),
        sa.Column("last_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("node_id", name=op.f("uq_users_node_id")),
    )
    op.create_table(
        "dataset_changelog_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_node_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_category", sa.String(length=32), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_attempts", sa.Integer(), nullable=False),
        sa.Column("last_publish_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_dataset_changelog_events_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_changelog_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_dataset_changelog_events_event_id")),
    )
    op.create_index(
        op.f("ix_dataset_changelog_events_organization_id"),
        "dataset_changelog_events",
        ["organization_id"],
        unique=False,
    )
    op.create_index(
        "ix_dataset_changelog_events_timeline",
        "dataset_changelog_events",
        ["dataset_id", "occurred_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_dataset_changelog_events_unpublished",
        "dataset_changelog_events",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "state",
            sa.Enum("READY", "DELETING", name="dataset_state", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_datasets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("node_id", name=op.f("uq_datasets_node_id")),
    )
    op.create_index(op.f("ix_datasets_organization_id"), "datasets", ["organization_id"], unique=False)
    op.create_table(
        "organization_storage",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_storage_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_storage")),
    )
    op.create_table(
        "dataset_assets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("banner", "readme", name="dataset_asset_kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("s3_bucket", sa.String(length=255), nullable=False),
        sa.Column("s3_key", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_assets_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_assets")),
    )
    op.create_index(op.f("ix_dataset_assets_dataset_id"), "dataset_assets", ["dataset_id"], unique=False)
    op.create_table(
        "dataset_storage",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_storage_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", name=op.f("pk_dataset_storage")),
    )
    op.create_index(
        op.f("ix_dataset_storage_organization_id"), "dataset_storage", ["organization_id"], unique=False
    )
    op.create_table(
        "packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "package_type",
            sa.Enum(
                "Collection",
                "TimeSeries",
                "Image",
                "MRI",
                "Slide",
                "PDF",
                "CSV",
                "Tabular",
                "Text",
                "Video",
                "HDF5",
                "ZIP",
                "Unknown",
                "Unsupported",
                name="package_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "READY",
                "UPLOADED",
                "PROCESSING",
                "PROCESSING_FAILED",
                "UNAVAILABLE",
                "DELETING",
                "DELETED",
                "RESTORING",
                name="package_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_packages_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_packages_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["packages.id"], name=op.f("fk_packages_parent_id_packages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packages")),
        sa.UniqueConstraint("node_id", name=op.f("uq_packages_node_id")),
    )
    op.create_index("ix_packages_dataset_id_id", "packages", ["dataset_id", "id"], unique=False)
    op.create_index(
        "ix_packages_organization_id_state", "packages", ["organization_id", "state"], unique=False
    )
    op.create_index("ix_packages_parent_id", "packages", ["parent_id"], unique=False)
    op.create_table(
        "files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("s3_bucket", sa.String(length=255), nullable=False),
        sa.Column("s3_key", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column(
            "object_type",
            sa.Enum(
                "source", "view", "file", name="file_object_type", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("is_prefix", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"], ["packages.id"], name=op.f("fk_files_package_id_packages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index(op.f("ix_files_package_id"), "files", ["package_id"], unique=False)
    op.create_table(
        "package_storage",
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_package_storage_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_package_storage")),
    )
    op.create_index(op.f("ix_package_storage_dataset_id"), "package_storage", ["dataset_id"], unique=False)
    op.create_index(
        op.f("ix_package_storage_organization_id"), "package_storage", ["organization_id"], unique=False
    )
    op.create_table(
        "timeseries_channel_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "channel_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_timeseries_channel_groups_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeseries_channel_groups")),
    )
    op.create_index(
        op.f("ix_timeseries_channel_groups_package_id"),
        "timeseries_channel_groups",
        ["package_id"],
        unique=False,
    )
    op.create_table(
        "timeseries_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_timeseries_channels_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeseries_channels")),
        sa.UniqueConstraint("node_id", name=op.f("uq_timeseries_channels_node_id")),
    )
    op.create_index(
        op.f("ix_timeseries_channels_package_id"), "timeseries_channels", ["package_id"], unique=False
    )
    op.create_table(
        "timeseries_layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_timeseries_layers_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeseries_layers")),
    )
    op.create_index(
        op.f("ix_timeseries_layers_package_id"), "timeseries_layers", ["package_id"], unique=False
    )
    op.create_table(
        "timeseries_annotations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["timeseries_layers.id"],
            name=op.f("fk_timeseries_annotations_layer_id_timeseries_layers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_timeseries_annotations_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeseries_annotations")),
    )
    op.create_index(
        op.f("ix_timeseries_annotations_layer_id"), "timeseries_annotations", ["layer_id"], unique=False
    )
    op.create_index(
        op.f("ix_timeseries_annotations_package_id"), "timeseries_annotations", ["package_id"], unique=False
    )
    op.create_table(
        "timeseries_ranges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(length=1024), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["timeseries_channels.id"],
            name=op.f("fk_timeseries_ranges_channel_id_timeseries_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeseries_ranges")),
    )
    op.create_index(
        op.f("ix_timeseries_ranges_channel_id"), "timeseries_ranges", ["channel_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_timeseries_ranges_channel_id"), table_name="timeseries_ranges")
    op.drop_table("timeseries_ranges")
    op.drop_index(op.f("ix_timeseries_annotations_package_id"), table_name="timeseries_annotations")
    op.drop_index(op.f("ix_timeseries_annotations_layer_id"), table_name="timeseries_annotations")
    op.drop_table("timeseries_annotations")
    op.drop_index(op.f("ix_timeseries_layers_package_id"), table_name="timeseries_layers")
    op.drop_table("timeseries_layers")
    op.drop_index(op.f("ix_timeseries_channels_package_id"), table_name="timeseries_channels")
    op.drop_table("timeseries_channels")
    op.drop_index(op.f("ix_timeseries_channel_groups_package_id"), table_name="timeseries_channel_groups")
    op.drop_table("timeseries_channel_groups")
    op.drop_index(op.f("ix_package_storage_organization_id"), table_name="package_storage")
    op.drop_index(op.f("ix_package_storage_dataset_id"), table_name="package_storage")
    op.drop_table("package_storage")
    op.drop_index(op.f("ix_files_package_id"), table_name="files")
    op.drop_table("files")
    op.drop_index("ix_packages_parent_id", table_name="packages")
    op.drop_index("ix_packages_organization_id_state", table_name="packages")
    op.drop_index("ix_packages_dataset_id_id", table_name="packages")
    op.drop_table("packages")
    op.drop_index(op.f("ix_dataset_storage_organization_id"), table_name="dataset_storage")
    op.drop_table("dataset_storage")
    op.drop_index(op.f("ix_dataset_assets_dataset_id"), table_name="dataset_assets")
    op.drop_table("dataset_assets")
    op.drop_table("organization_storage")
    op.drop_index(op.f("ix_datasets_organization_id"), table_name="datasets")
    op.drop_table("datasets")
    op.drop_index(
        "ix_dataset_changelog_events_unpublished",
        table_name="dataset_changelog_events",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.drop_index("ix_dataset_changelog_events_timeline", table_name="dataset_changelog_events")
    op.drop_index(op.f("ix_dataset_changelog_events_organization_id"), table_name="dataset_changelog_events")
    op.drop_table("dataset_changelog_events")
    op.drop_table("users")
    op.drop_table("organizations")
    op.drop_index(op.f("ix_job_audit_log_organization_id"), table_name="job_audit_log")
    op.drop_index("ix_job_audit_log_job_name_created_at", table_name="job_audit_log")
    op.drop_index(op.f("ix_job_audit_log_job_id"), table_name="job_audit_log")
    op.drop_table("job_audit_log")
