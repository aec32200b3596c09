"""HTTP layer: thin Litestar controllers over ``orchestrator.service``."""
