"""Package and dataset deletion, in plain Python: guards, the package-tree walk, bulk S3 deletion in a
bounded thread pool, the row clean-up, the report and the audit row. The Dagster ops in
`jobs_orchestration.defs.deletion` are thin wrappers over `service`.

Rows: a deleted package's row is kept as a tombstone in state DELETED (the platform's API reads that
state); the rows that locate stored data (files, time-series ranges) are removed as soon as their objects
are gone, and the package's other time-series rows (channels, layers, annotations, channel groups) and
its storage cache rows when nothing of it is left. The file and range rows still present are therefore
exactly what remains to delete, which is what makes a re-run continue where a crash or an error
stopped it. A dataset deletion ends by removing the dataset's row and, with it, its package tombstones.
"""
