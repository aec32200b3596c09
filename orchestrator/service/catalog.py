"""Which pipelines this process offers.

``Catalog`` is one snapshot (name → spec), what a request or a job works with from start to
end. ``CatalogSource`` hands out the snapshot of the moment: ``pipelines.catalog``'s reloading
``PipelineCatalog`` in the processes, a ``FixedCatalog`` in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pipelines.pipefile import PipelineFileError
from pipelines.spec import PipelineSpec

Catalog = Mapping[str, PipelineSpec]


class CatalogSource(Protocol):
    @property
    def problems(self) -> tuple[PipelineFileError, ...]: ...

    def current(self) -> Catalog: ...

    def invalidate(self) -> None: ...
