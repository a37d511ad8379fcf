"""The Email Parser's snapshot files: where they are stored and when they may be deleted."""
