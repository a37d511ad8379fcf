"""The local stack: a moto server for SQS, SNS and S3, the queues, topic and buckets the jobs use,
demo data, and the Dagster processes. Used by `jobs-orchestration dev`, the tests and the benchmarks."""
