"""Models of the research-data platform's tables that the jobs read and change."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jobs_orchestration.db.base import BigIntPK, PlatformBase, string_enum, utcnow


class DatasetState(enum.StrEnum):
    READY = "READY"
    DELETING = "DELETING"


class PackageState(enum.StrEnum):
    READY = "READY"
    UPLOADED = "UPLOADED"
    PROCESSING = "PROCESSING"
    PROCESSING_FAILED = "PROCESSING_FAILED"
    UNAVAILABLE = "UNAVAILABLE"
    DELETING = "DELETING"
    DELETED = "DELETED"
    RESTORING = "RESTORING"


class PackageType(enum.StrEnum):
    COLLECTION = "Collection"
    TIME_SERIES = "TimeSeries"
    IMAGE = "Image"
    MRI = "MRI"
    SLIDE = "Slide"
    PDF = "PDF"
    CSV = "CSV"
    TABULAR = "Tabular"
    TEXT = "Text"
    VIDEO = "Video"
    HDF5 = "HDF5"
    ZIP = "ZIP"
    UNKNOWN = "Unknown"
    UNSUPPORTED = "Unsupported"


class FileObjectType(enum.StrEnum):
    SOURCE = "source"
    """The uploaded original: the only kind that counts for storage totals."""
    VIEW = "view"
    FILE = "file"


class DatasetAssetKind(enum.StrEnum):
    BANNER = "banner"
    README = "readme"


class Organization(PlatformBase):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class User(PlatformBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    first_name: Mapped[str] = mapped_column(sa.String(255), default="")
    last_name: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Dataset(PlatformBase):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(255))
    state: Mapped[DatasetState] = mapped_column(
        string_enum(DatasetState, "dataset_state"), default=DatasetState.READY
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DatasetAsset(PlatformBase):
    """A dataset's banner image or readme: one S3 object each."""

    __tablename__ = "dataset_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[DatasetAssetKind] = mapped_column(string_enum(DatasetAssetKind, "dataset_asset_kind"))
    name: Mapped[str] = mapped_column(sa.String(255))
    s3_bucket: Mapped[str] = mapped_column(sa.String(255))
    s3_key: Mapped[str] = mapped_column(sa.String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Package(PlatformBase):
    """A node of a dataset's tree: a collection (folder) or a leaf package holding files."""

    __tablename__ = "packages"
    __table_args__ = (
        sa.Index("ix_packages_dataset_id_id", "dataset_id", "id"),
        sa.Index("ix_packages_parent_id", "parent_id"),
        sa.Index("ix_packages_organization_id_state", "organization_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("packages.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(255))
    package_type: Mapped[PackageType] = mapped_column(string_enum(PackageType, "package_type"))
    state: Mapped[PackageState] = mapped_column(
        string_enum(PackageState, "package_state"), default=PackageState.READY
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class File(PlatformBase):
    """An S3 object (or, with `is_prefix`, every object under a key prefix) belonging to a package."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    s3_bucket: Mapped[str] = mapped_column(sa.String(255))
    s3_key: Mapped[str] = mapped_column(sa.String(1024))
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    object_type: Mapped[FileObjectType] = mapped_column(
        string_enum(FileObjectType, "file_object_type"), default=FileObjectType.SOURCE
    )
    is_prefix: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TimeSeriesChannel(PlatformBase):
    __tablename__ = "timeseries_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    rate: Mapped[float] = mapped_column(default=0.0)


class TimeSeriesRange(PlatformBase):
    """A stretch of a channel's samples, stored as one object in the time-series bucket at `location`."""

    __tablename__ = "timeseries_ranges"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("timeseries_channels.id", ondelete="CASCADE"), index=True
    )
    location: Mapped[str] = mapped_column(sa.String(1024))
    start_time: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    end_time: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class TimeSeriesLayer(PlatformBase):
    __tablename__ = "timeseries_layers"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))


class TimeSeriesAnnotation(PlatformBase):
    __tablename__ = "timeseries_annotations"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    layer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("timeseries_layers.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(sa.String(255))
    start_time: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    end_time: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class TimeSeriesChannelGroup(PlatformBase):
    __tablename__ = "timeseries_channel_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    channel_ids: Mapped[list[Any]] = mapped_column(default=list)


class PackageStorage(PlatformBase):
    """Cached storage size of a package, its descendants included.

    No foreign key to `packages` and no index on `dataset_id`: a first refresh writes a row for every
    sized package, and neither earned its cost (migration platform_0003_package_storage says why). A
    row whose package is gone is removed by the next refresh of its organization."""

    __tablename__ = "package_storage"

    # The package's id, not a sequence of its own.
    package_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    organization_id: Mapped[int] = mapped_column(index=True)
    dataset_id: Mapped[int]
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DatasetStorage(PlatformBase):
    __tablename__ = "dataset_storage"

    dataset_id: Mapped[int] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OrganizationStorage(PlatformBase):
    __tablename__ = "organization_storage"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DatasetChangelogEvent(PlatformBase):
    """One changelog event of a dataset; also the outbox row of its SNS publication.

    Rows are kept when the dataset goes: the changelog is the dataset's audit trail.
    """

    __tablename__ = "dataset_changelog_events"
    __table_args__ = (
        sa.Index("ix_dataset_changelog_events_timeline", "dataset_id", "occurred_at", "id"),
        sa.Index(
            "ix_dataset_changelog_events_unpublished",
            "id",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    organization_id: Mapped[int] = mapped_column(index=True)
    dataset_id: Mapped[int]
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    user_node_id: Mapped[str] = mapped_column(sa.String(128))
    event_type: Mapped[str] = mapped_column(sa.String(64))
    event_category: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    trace_id: Mapped[str | None] = mapped_column(sa.String(255))
    job_id: Mapped[str | None] = mapped_column(sa.String(255))
    published_at: Mapped[dt.datetime | None]
    publish_attempts: Mapped[int] = mapped_column(default=0)
    last_publish_error: Mapped[str | None] = mapped_column(sa.Text)


class JobAuditLog(PlatformBase):
    """What a job did: one row per job message (or per UI launch), whatever its outcome."""

    __tablename__ = "job_audit_log"
    __table_args__ = (sa.Index("ix_job_audit_log_job_name_created_at", "job_name", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    job_name: Mapped[str] = mapped_column(sa.String(64))
    job_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    trace_id: Mapped[str | None] = mapped_column(sa.String(255))
    user_id: Mapped[str | None] = mapped_column(sa.String(128))
    organization_id: Mapped[int | None] = mapped_column(index=True)
    resource_ids: Mapped[list[Any]] = mapped_column(default=list)
    packages_deleted: Mapped[int] = mapped_column(default=0)
    files_deleted: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    objects_deleted: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    bytes_deleted: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    outcome: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dagster_run_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
