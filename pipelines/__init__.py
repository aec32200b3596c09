"""Pipelines: each one a pipeline file (TOML), the code its container runs and a Dockerfile.

``pipelines.pipefile`` reads a pipeline file into a ``pipelines.spec.PipelineSpec``;
``pipelines.catalog`` gives a process the pipelines of ``PIPELINES_PATH`` and re-reads them when
they change. The pipeline packages import nothing from the orchestrator, so they run unchanged
inside their containers.
"""
