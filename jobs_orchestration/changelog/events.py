"""Changelog event types, their detail shapes and categories, and event timestamps.

The producers' contract is in design/messages.md; the 52 event names, their categories and the shape
of each detail are the original platform's (its ChangelogEventName and ChangelogEventDetail). Every
detail is validated as strictly as the original's decoder: required fields present, optional `?`
fields absent or null, strings, 32-bit integers where it had an Int, UUIDs, and the exact names of
its enumerations (License, Degree, RelationshipType, Role). Only the values the original kept as
arbitrary JSON (a record property's `dataType`, `oldValue` and `newValue`) are stored as given. Fields
a shape does not name are dropped, as the original's decoders did, so the stored and published
detail is always the documented shape. Every failure raises `InvalidChangelogEvent` naming the field
and the value, so a bad message can be dead-lettered with a reason a person can act on.

The SQS intake imports `validate_event`, `parse_event_timestamp`, `InvalidChangelogEvent`,
`EVENT_TYPES` and `event_category` from here: keep these names stable.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, ValidationError
from pydantic_core import ErrorDetails


class InvalidChangelogEvent(ValueError):
    """A changelog event that cannot be stored: unknown type, wrong detail shape or bad timestamp."""


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- Field types ----------------------------------------------------------------------------------
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _nullable(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`check` for an Option field: null passes through, so the error names the field alone."""
    return lambda value: None if value is None else check(value)


def _int32(value: Any) -> int:
    # bool is an int to Python, but `true` is no integer to a JSON decoder.
    if type(value) is not int or not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"must be a JSON integer from {INT32_MIN} to {INT32_MAX}")
    return value


def _canonical_uuid(value: Any) -> str:
    """The original decoded a 36-character UUID and wrote it back in lower case."""
    if not isinstance(value, str) or not _UUID_TEXT.match(value):
        raise ValueError("must be a UUID such as 0b8e2a6c-94c4-4a5e-9a51-1b8a0f2f0c11")
    return str(uuid.UUID(value))


def _one_of(kind: str, names: tuple[str, ...]) -> Callable[[Any], str]:
    """A check that accepts exactly the names the original's enumeration `kind` decoded."""
    known = frozenset(names)
    listed = ", ".join(repr(name) for name in names)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in known:
            raise ValueError(f"is not a {kind}; the {kind} values are {listed}")
        return value

    return check


Int32 = Annotated[int, BeforeValidator(_int32)]
OptionalInt32 = Annotated[int | None, BeforeValidator(_nullable(_int32))]
Uuid = Annotated[str, BeforeValidator(_canonical_uuid)]
OptionalUuid = Annotated[str | None, BeforeValidator(_nullable(_canonical_uuid))]

LICENSES = (
    "Apache 2.0",
    "Apache License 2.0",
    'BSD 2-Clause "Simplified" License',
    'BSD 3-Clause "New" or "Revised" License',
    "Boost Software License 1.0",
    "Community Data License Agreement \u2013 Permissive",
    "Community Data License Agreement \u2013 Sharing",
    "Creative Commons Zero 1.0 Universal",
    "Creative Commons Attribution",
    "Creative Commons Attribution - ShareAlike",
    "Creative Commons Attribution - NonCommercial-ShareAlike",
    "Eclipse Public License 2.0",
    "GNU Affero General Public License v3.0",
    "GNU General Public License v2.0",
    "GNU General Public License v3.0",
    "GNU Lesser General Public License",
    "GNU Lesser General Public License v2.1",
    "GNU Lesser General Public License v3.0",
    "MIT",
    "MIT License",
    "Mozilla Public License 2.0",
    "Open Data Commons Open Database",
    "Open Data Commons Attribution",
    "Open Data Commons Public Domain Dedication and License",
    "The Unlicense",
)
"""The original's License names, exactly (the two Community Data ones with an en dash)."""

DEGREES = ("Ph.D.", "M.D.", "M.S.", "B.S.", "Pharm.D.", "D.V.M.", "D.O.")

RELATIONSHIP_TYPES = (
    "Describes",
    "Documents",
    "IsCitedBy",
    "IsDerivedFrom",
    "IsDescribedBy",
    "IsDocumentedBy",
    "IsMetadataFor",
    "IsReferencedBy",
    "IsRequiredBy",
    "IsSourceOf",
    "IsSupplementedBy",
    "IsSupplementTo",
    "IsOriginalFormOf",
    "IsVariantFormOf",
    "References",
    "Requires",
)
"""The DataCite relations the original enabled (it had Cites, Continues and a few more commented out)."""

ROLES = ("guest", "viewer", "editor", "manager", "owner")
"""Dataset roles as the original wrote them: its entry names in snake case."""

OptionalLicense = Annotated[str | None, BeforeValidator(_nullable(_one_of("License", LICENSES)))]
OptionalDegree = Annotated[str | None, BeforeValidator(_nullable(_one_of("Degree", DEGREES)))]
RelationshipType = Annotated[str, BeforeValidator(_one_of("RelationshipType", RELATIONSHIP_TYPES))]
OptionalRole = Annotated[str | None, BeforeValidator(_nullable(_one_of("Role", ROLES)))]


# --- Dataset (METADATA) ---------------------------------------------------------------------------
class EmptyDetail(_Detail):
    pass


class UpdateName(_Detail):
    oldName: StrictStr
    newName: StrictStr


class UpdateDescription(_Detail):
    oldDescription: StrictStr | None = None
    newDescription: StrictStr | None = None


class UpdateLicense(_Detail):
    oldLicense: OptionalLicense = None
    newLicense: OptionalLicense = None


class TagDetail(_Detail):
    name: StrictStr


class UpdateReadme(_Detail):
    oldReadme: StrictStr | None = None
    newReadme: StrictStr | None = None


class UpdateBannerImage(_Detail):
    oldBanner: StrictStr | None = None
    newBanner: StrictStr | None = None


class CollectionDetail(_Detail):
    id: Int32
    name: StrictStr


class ContributorDetail(_Detail):
    id: Int32
    firstName: StrictStr
    middleInitial: StrictStr | None = None
    lastName: StrictStr
    degree: OptionalDegree = None


class ExternalPublicationDetail(_Detail):
    doi: StrictStr
    relationshipType: RelationshipType


class UpdateIgnoreFiles(_Detail):
    totalCount: Int32


class DatasetStatusDetail(_Detail):
    id: Int32
    name: StrictStr
    displayName: StrictStr


class UpdateStatus(_Detail):
    oldStatus: DatasetStatusDetail
    newStatus: DatasetStatusDetail


# --- Permissions ----------------------------------------------------------------------------------
class UpdatePermission(_Detail):
    oldRole: OptionalRole = None
    newRole: OptionalRole = None
    userId: OptionalInt32 = None
    teamId: OptionalInt32 = None
    organizationId: OptionalInt32 = None


class UpdateOwner(_Detail):
    oldOwner: Int32
    newOwner: Int32


# --- Packages (FILES) -----------------------------------------------------------------------------
class PackageParent(_Detail):
    id: Int32
    nodeId: StrictStr | None = None
    name: StrictStr | None = None


class PackageDetail(_Detail):
    """CREATE_PACKAGE and DELETE_PACKAGE."""

    id: Int32
    nodeId: StrictStr | None = None
    name: StrictStr | None = None
    parent: PackageParent | None = None


class RenamePackage(_Detail):
    id: Int32
    nodeId: StrictStr | None = None
    oldName: StrictStr
    newName: StrictStr
    parent: PackageParent | None = None


class MovePackage(_Detail):
    id: Int32
    nodeId: StrictStr | None = None
    name: StrictStr | None = None
    oldParent: PackageParent | None = None
    newParent: PackageParent | None = None


class RestorePackage(_Detail):
    id: Int32
    nodeId: StrictStr | None = None
    name: StrictStr | None = None
    originalName: StrictStr | None = None
    parent: PackageParent | None = None


# --- Models and records ---------------------------------------------------------------------------
class ModelDetail(_Detail):
    id: Uuid
    name: StrictStr


class ModelPropertyDetail(_Detail):
    modelId: Uuid
    modelName: StrictStr
    propertyName: StrictStr


class RecordDetail(_Detail):
    """CREATE_RECORD and DELETE_RECORD."""

    id: Uuid
    name: StrictStr | None = None
    modelId: OptionalUuid = None


class PropertyDiff(_Detail):
    """One changed property of a record; its values are any JSON (null included), kept as given."""

    name: StrictStr
    dataType: Any = None
    oldValue: Any
    newValue: Any


class UpdateRecord(_Detail):
    id: Uuid
    name: StrictStr | None = None
    modelId: OptionalUuid = None
    properties: list[PropertyDiff] | None = None


# --- Publishing -----------------------------------------------------------------------------------
class PublicationStatusDetail(_Detail):
    """Every publishing event names the dataset's publication status row."""

    publicationStatusId: Int32


class UpdateChangelog(_Detail):
    oldChangelog: StrictStr | None = None
    newChangelog: StrictStr | None = None


# --- Custom ---------------------------------------------------------------------------------------
class CustomEvent(_Detail):
    event_type: StrictStr
    message: StrictStr


# The published categories, from the original's DATASET, PACKAGES, PUBLISHING, PERMISSIONS,
# MODELS_AND_RECORDS and CUSTOM.
METADATA = "METADATA"
FILES = "FILES"
PUBLISHING = "PUBLISHING"
PERMISSIONS = "PERMISSIONS"
RECORDS_AND_MODELS = "RECORDS_AND_MODELS"
CUSTOM = "CUSTOM"
UNKNOWN = "UNKNOWN"

_PUBLICATION_STATUS_TYPES = [
    f"{action}_{subject}"
    for subject in ("PUBLICATION", "EMBARGO", "REMOVAL", "REVISION")
    for action in ("REQUEST", "ACCEPT", "REJECT", "CANCEL")
] + ["RELEASE_EMBARGO"]

EVENT_TYPES: dict[str, tuple[str, type[_Detail]]] = {
    # event type -> (category, detail model)
    "CREATE_DATASET": (METADATA, EmptyDetail),
    "UPDATE_METADATA": (METADATA, EmptyDetail),  # deprecated by the platform, still accepted
    "UPDATE_NAME": (METADATA, UpdateName),
    "UPDATE_DESCRIPTION": (METADATA, UpdateDescription),
    "UPDATE_LICENSE": (METADATA, UpdateLicense),
    "ADD_TAG": (METADATA, TagDetail),
    "REMOVE_TAG": (METADATA, TagDetail),
    "UPDATE_README": (METADATA, UpdateReadme),
    "UPDATE_BANNER_IMAGE": (METADATA, UpdateBannerImage),
    "ADD_COLLECTION": (METADATA, CollectionDetail),
    "REMOVE_COLLECTION": (METADATA, CollectionDetail),
    "ADD_CONTRIBUTOR": (METADATA, ContributorDetail),
    "REMOVE_CONTRIBUTOR": (METADATA, ContributorDetail),
    "ADD_EXTERNAL_PUBLICATION": (METADATA, ExternalPublicationDetail),
    "REMOVE_EXTERNAL_PUBLICATION": (METADATA, ExternalPublicationDetail),
    "UPDATE_IGNORE_FILES": (METADATA, UpdateIgnoreFiles),
    "UPDATE_STATUS": (METADATA, UpdateStatus),
    "UPDATE_PERMISSION": (PERMISSIONS, UpdatePermission),
    "UPDATE_OWNER": (PERMISSIONS, UpdateOwner),
    "CREATE_PACKAGE": (FILES, PackageDetail),
    "RENAME_PACKAGE": (FILES, RenamePackage),
    "MOVE_PACKAGE": (FILES, MovePackage),
    "DELETE_PACKAGE": (FILES, PackageDetail),
    "RESTORE_PACKAGE": (FILES, RestorePackage),
    "CREATE_MODEL": (RECORDS_AND_MODELS, ModelDetail),
    "UPDATE_MODEL": (RECORDS_AND_MODELS, ModelDetail),
    "DELETE_MODEL": (RECORDS_AND_MODELS, ModelDetail),
    "CREATE_MODEL_PROPERTY": (RECORDS_AND_MODELS, ModelPropertyDetail),
    "UPDATE_MODEL_PROPERTY": (RECORDS_AND_MODELS, ModelPropertyDetail),
    "DELETE_MODEL_PROPERTY": (RECORDS_AND_MODELS, ModelPropertyDetail),
    "CREATE_RECORD": (RECORDS_AND_MODELS, RecordDetail),
    "UPDATE_RECORD": (RECORDS_AND_MODELS, UpdateRecord),
    "DELETE_RECORD": (RECORDS_AND_MODELS, RecordDetail),
    "CUSTOM_EVENT": (CUSTOM, CustomEvent),
    **{name: (PUBLISHING, PublicationStatusDetail) for name in _PUBLICATION_STATUS_TYPES},
    # The original files the dataset's own changelog text under publishing, not dataset metadata.
    "UPDATE_CHANGELOG": (PUBLISHING, UpdateChangelog),
}


def event_category(event_type: str) -> str:
    """The published `eventCategory` of an event type; `UNKNOWN` for a name outside the contract."""
    entry = EVENT_TYPES.get(event_type)
    return entry[0] if entry else UNKNOWN


def _describe(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "eventDetail"
    if error["type"] == "missing":
        return f"field {field!r} is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"field {field!r} {message} (got {error.get('input')!r})"


def validate_event(event_type: str, detail: Any) -> dict[str, Any]:
    """The normalized detail of one event, or `InvalidChangelogEvent` naming what is wrong.

    Normalized means the documented fields only, optional ones present as null when absent, UUIDs
    in canonical form; a record property's JSON values come back unchanged.
    """
    if event_type not in EVENT_TYPES:
        raise InvalidChangelogEvent(f"eventType {event_type!r} is not a known changelog event type")
    if not isinstance(detail, dict):
        raise InvalidChangelogEvent(
            f"eventDetail of {event_type} must be a JSON object, got {type(detail).__name__} {detail!r}"
        )
    model = EVENT_TYPES[event_type][1]
    try:
        parsed = model.model_validate(detail)
    except ValidationError as error:
        reasons = "; ".join(_describe(item) for item in error.errors())
        raise InvalidChangelogEvent(f"eventDetail of {event_type} is invalid: {reasons}") from None
    return parsed.model_dump(mode="json")


_ZONE_SUFFIX = re.compile(r"^(?P<stamp>[^\[\]]+)\[(?P<zone>[^\[\]]+)\]$")


def parse_event_timestamp(text: str | None, *, now: dt.datetime | None = None) -> dt.datetime:
    """An event's time as an aware UTC datetime; None or empty means now.

    Accepts the forms Java's ISO zoned formatter wrote: `2021-06-01T12:00:00Z`, `2021-06-01T12:00Z[UTC]`,
    `2021-06-01T14:00+02:00[Europe/Paris]` (the offset wins; the zone name must exist), and a zone
    without an offset (`2021-06-01T14:00[Europe/Paris]`). A time with neither is refused as ambiguous.
    """
    if text is None or text == "":
        return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if not isinstance(text, str):
        raise InvalidChangelogEvent(f"timestamp must be a string, got {text!r}")
    stamp, zone = text.strip(), None
    match = _ZONE_SUFFIX.match(stamp)
    if match:
        stamp, zone_name = match["stamp"], match["zone"]
        try:
            zone = dt.UTC if zone_name in ("UTC", "Z", "GMT") else zoneinfo.ZoneInfo(zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidChangelogEvent(
                f"timestamp {text!r} names an unknown time zone {zone_name!r}"
            ) from None
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidChangelogEvent(f"timestamp {text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if zone is None:
            raise InvalidChangelogEvent(f"timestamp {text!r} has no UTC offset or time zone")
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)
