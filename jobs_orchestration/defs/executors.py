"""The executor of the jobs that job messages start."""

import dagster as dg

# Their runs hold one or two small ops: the multiprocess executor would add a Python start-up per op
# (seconds on a small machine) to every run, more than the work itself. Op retry policies still apply.
message_job_executor = dg.in_process_executor
