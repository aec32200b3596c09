"""Labels the worker puts on every pipeline container; whoever finds or cleans containers reads
them from here (the worker's orphan sweep, the local stack's fake hosts)."""

LABEL_TASK = "orchestrator.task_id"
# "<hostname>:<pid>" of the process supervising the container; when that process is gone the
# container is an orphan nobody will stop (a slot that crashed, or ended itself past its
# job's timeout, say).
LABEL_OWNER = "orchestrator.owner"
