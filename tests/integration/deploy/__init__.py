"""Deployment artefacts: compose.yml validation and the api/worker images run for real."""
