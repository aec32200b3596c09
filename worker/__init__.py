"""The worker: an RQ worker whose job claims a task, stages its inputs, runs its pipeline under
hard limits (``worker.executors``) and stores the results. ``python -m worker`` starts one."""
