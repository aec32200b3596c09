"""Pipelines: one package per pipeline, each a spec, the code run in its container and a Dockerfile.

``pipelines.registry`` maps names to specs for the orchestrator; the pipeline packages themselves
import nothing from the orchestrator so they run unchanged inside their containers.
"""
