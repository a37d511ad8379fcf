"""The complete metadata of both databases, every model registered."""

from jobs_orchestration.db import email_parser, platform  # noqa: F401  (importing registers the tables)
from jobs_orchestration.db.base import EmailParserBase, PlatformBase

platform_metadata = PlatformBase.metadata
email_parser_metadata = EmailParserBase.metadata
all_metadata = (platform_metadata, email_parser_metadata)
