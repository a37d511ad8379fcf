"""How the project talks to AWS: one place for the clients and their bounds (`clients`), for batch
calls within each API's limits with retries of only the entries that failed (`batching`, and the
per-service calls in `sqs`, `sns` and `s3`). Whether an error is worth another attempt is decided by
`jobs_orchestration.failures`, which classifies the database's errors the same way."""
