"""The tusd hook use case: locate the task, take the pure decision, carry it out."""

from __future__ import annotations

import logging

from hooks.decisions import (
    Decision,
    FreeSlot,
    Ignore,
    RecordFinish,
    RecordProgress,
    RecordStart,
    Target,
    decide,
    locate,
    respond,
    verify_stored,
)
from hooks.protocol import HookRequest, HookResponse
from orchestrator.bootstrap import Services
from orchestrator.errors import StorageError
from orchestrator.logs import task_context
from orchestrator.service.catalog import Catalog
from orchestrator.service.metrics import counting_hook, rejected_hook
from orchestrator.service.tasks import queue_if_complete

log = logging.getLogger(__name__)


def handle_hook(services: Services, catalog: Catalog, req: HookRequest) -> HookResponse:
    """Answer one hook. Transient failures raise ``DependencyError`` (→ 503, tusd retries)."""
    hook = req.Type.value
    with counting_hook(hook):
        response = _answer(services, catalog, req)
    if response.RejectUpload or response.StopUpload:
        rejected_hook(hook)
    return response


def _answer(services: Services, catalog: Catalog, req: HookRequest) -> HookResponse:
    located = locate(req, services.settings.upload_token_secret)
    if not isinstance(located, Target):
        _log(req, located)
        return respond(located)
    with task_context(located.task_id):
        task = services.tasks.get(located.task_id)
        spec = catalog.get(task.pipeline) if task else None
        decision = _carry_out(services, decide(req, located, task, spec))
        _log(req, decision, slot=located.slot)
        return respond(decision)


def _carry_out(services: Services, decision: Decision) -> Decision:
    """Apply a recording decision; returns what was actually done (an Ignore if nothing)."""
    repo = services.tasks
    if isinstance(decision, RecordStart):
        if not repo.slot_upload_started(
            decision.task_id, decision.slot, decision.upload_id, decision.filename, decision.size
        ):
            return Ignore("slot was filled meanwhile")
    elif isinstance(decision, RecordProgress):
        if not repo.slot_progress(
            decision.task_id, decision.slot, decision.upload_id, decision.offset
        ):
            return Ignore("slot was filled or taken over meanwhile")
    elif isinstance(decision, RecordFinish):
        return _finish(services, decision)
    elif isinstance(decision, FreeSlot) and not repo.slot_freed(
        decision.task_id, decision.slot, decision.upload_id
    ):
        return Ignore("slot changed meanwhile")
    return decision


def _finish(services: Services, decision: RecordFinish) -> Decision:
    stored = services.storage.stat_size(decision.bucket, decision.key)
    problem = verify_stored(decision, stored)
    if stored is None:
        # tusd sends post-finish after the object is complete, so a missing object is most
        # likely storage lagging: 503 makes tusd retry.
        raise StorageError(f"upload {decision.upload_id} not verified: {problem}")
    if problem is not None:
        # A wrong size never heals by retrying; the slot stays unfilled, visibly uploading.
        log.warning("finished upload not trusted: %s", problem)
        return Ignore(problem)
    services.tasks.slot_finished(
        decision.task_id,
        decision.slot,
        upload_id=decision.upload_id,
        filename=decision.filename,
        size=decision.size,
        bucket=decision.bucket,
        key=decision.key,
    )
    # Also on a replay: the first delivery may have recorded the slot and then failed (503)
    # before the task was queued. Only once every slot is filled: a client may still be about
    # to upload an optional input; with optional slots left empty the task starts on
    # start_task or, after settings.optional_inputs_grace_s without upload activity, by the
    # reconciler.
    queue_if_complete(services, decision.task_id, all_inputs=True)
    return decision


def _log(req: HookRequest, decision: Decision, slot: str | None = None) -> None:
    # post-receive arrives for every chunk; the rest is rare and worth seeing.
    level = logging.DEBUG if isinstance(decision, RecordProgress) else logging.INFO
    log.log(
        level,
        "hook %s: %s",
        req.Type.value,
        type(decision).__name__,
        extra={"upload_id": req.upload.ID, "slot": slot, "decision": repr(decision)},
    )
