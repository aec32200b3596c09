"""Which pipelines this process offers: a name → spec mapping, injectable for tests."""

from __future__ import annotations

from collections.abc import Mapping

from pipelines.spec import PipelineSpec

Catalog = Mapping[str, PipelineSpec]
