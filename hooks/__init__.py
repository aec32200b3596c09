"""tusd hook protocol: typed v2 HTTP hook structs and the pure decisions taken for each hook.

Nothing in this package does I/O; ``orchestrator.service.uploads`` carries the decisions out.
"""
