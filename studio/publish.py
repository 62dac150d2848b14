"""Publishing: the project's files compiled, compared with the live version, tested, and activated.

    /workspace/publish              the files' difference from the live version, the changes in
                                    flows and schemas, the database migration, the flow tests, the
                                    publish button, and the history with a rollback for each version
    POST /workspace/publish         checks everything again, migrates, records and activates
    POST /workspace/rollback        activates an earlier version (number=N)

Who may: those who may edit (studio.workspace.may_edit).  The checks and the database's side are
studio.release's, shared with `flowdesk publish`.  Activating swaps what the running studio serves:
the bundle, the record store, the users' roles, the desktop's directory and the telephony (new calls
take the new version; calls already running finish on theirs).  One publish or rollback at a time.
"""
from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from compiler import ir
from runtime import versions
from runtime.crm import users
from studio import auth, release
from studio.workspace import may_edit

MAX_NOTE = 500
HISTORY_SHOWN = 50


def _studio(request: Request):
    return request.app.state.studio


def _lock(request: Request) -> asyncio.Lock:
    state = request.app.state
    if not hasattr(state, "publishing"):
        state.publishing = asyncio.Lock()
    return state.publishing


def _refused(request: Request) -> Response | None:
    from studio.screens import message

    if not may_edit(auth.current_user(request)):
        return message(request, "无权发布", "只有值班主管(或项目中的 analyst 角色)可以发布和回滚流程。", 403)
    return None


# ------------------------------------------------------------------ activating in the running studio

def activate(app, bundle: ir.Bundle) -> None:
    """Serve `bundle` from now on: the CRM's screens and store, the users' roles, the screen pop's
    directory and the telephony.  The database is already migrated to its entities."""
    from runtime.crm.records import RecordStore
    from studio.desktop import Directory

    studio = app.state.studio
    store = RecordStore(studio.engine, bundle, now=studio.clock)
    store.create_tables()       # the search indexes of new entities
    studio.accounts.users = users.users_from_bundle(bundle)
    studio.store, studio.bundle = store, bundle
    app.state.desktop_directory = Directory(studio.engine, bundle)
    live = getattr(app.state, "telephony", None)
    if live is not None:
        live.publish(bundle, store)


# ------------------------------------------------------------------ pages

async def _page(request: Request, candidate: release.Candidate, *, status: int = 200, error: list[str] | None = None,
                notice: str | None = None, note: str = "") -> Response:
    from studio.screens import page

    engine = _studio(request).engine
    history, log = await asyncio.to_thread(lambda: (versions.history(engine)[:HISTORY_SHOWN],
                                                    versions.activations(engine)[:HISTORY_SHOWN]))
    live = candidate.live
    previous = await asyncio.to_thread(versions.previous, engine)
    return page(request, "publish.html", {
        "title": "发布", "current": "workspace", "candidate": candidate, "live": live, "previous": previous,
        "history": history, "activations": log, "error": error or [], "notice": notice, "note": note,
        "when": _when(request)}, status)


def _when(request: Request):
    """A stored time as the project's clocks show it."""
    from studio import render

    zone = render.zone(_studio(request).bundle)
    return lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


async def _check(request: Request) -> release.Candidate:
    studio = _studio(request)
    return await asyncio.to_thread(release.check, studio.project, studio.engine, studio.bundle.environment)


async def publish_page(request: Request) -> Response:
    refused = _refused(request)
    if refused:
        return refused
    candidate = await _check(request)
    shown = request.query_params
    notice = (f"已发布版本 {shown['published']},新来电使用新版本;进行中的通话按原版本结束。" if "published" in shown
              else f"已回滚到版本 {shown['rolled_back']}。" if "rolled_back" in shown else None)
    return await _page(request, candidate, notice=notice)


async def publish_endpoint(request: Request) -> Response:
    refused = _refused(request)
    if refused:
        return refused
    form = await request.form()
    note = str(form.get("note", "")).strip()[:MAX_NOTE]
    studio, user = _studio(request), auth.current_user(request)
    async with _lock(request):
        candidate = await _check(request)     # never what the page showed: the files may have changed since
        try:
            number = await asyncio.to_thread(release.publish, studio.engine, candidate, by=user.name,
                                             at=studio.clock(), note=note)
        except release.PublishRefused as refusal:
            return await _page(request, candidate, status=422, error=refusal.reasons, note=note)
        activate(request.app, candidate.bundle)
    return RedirectResponse(f"/workspace/publish?published={number}", status_code=303)


async def rollback_endpoint(request: Request) -> Response:
    refused = _refused(request)
    if refused:
        return refused
    form = await request.form()
    studio, user = _studio(request), auth.current_user(request)
    try:
        number = int(str(form.get("number", "")))
    except ValueError:
        return await _page(request, await _check(request), status=400, error=["没有指定要回滚到的版本号"])
    async with _lock(request):
        try:
            bundle = await asyncio.to_thread(release.roll_back, studio.engine, number, by=user.name, at=studio.clock())
        except release.PublishRefused as refusal:
            return await _page(request, await _check(request), status=409, error=refusal.reasons)
        activate(request.app, bundle)
    return RedirectResponse(f"/workspace/publish?rolled_back={number}", status_code=303)


routes = [
    Route("/workspace/publish", publish_page),
    Route("/workspace/publish", publish_endpoint, methods=["POST"]),
    Route("/workspace/rollback", rollback_endpoint, methods=["POST"]),
]
