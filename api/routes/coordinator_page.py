"""The coordinators' review page at ``/coordinator``: server-rendered HTML over the same services
as the JSON routes (:mod:`api.routes.coordinator`, :mod:`api.routes.decisions`).

A coordinator signs in with their API key on a form; the key is kept in an HttpOnly,
SameSite=Strict cookie (Secure over https) and checked on every request exactly as the
``X-API-Key`` header is (:func:`api.deps.require_scope`), so a scoped key sees only its
communities. Every form carries a CSRF token, the HMAC of a random per-browser nonce (kept in
its own HttpOnly cookie) under a secret derived from the configured keys, so every worker of
one deployment accepts the same token; a POST without a valid token is refused with 403.
Charts are inline SVG drawn from figures computed here; the page loads nothing else.

The handlers are plain ``def`` (they read the store and may compute the cohort figures); the
signed-in check and the form body are read by ``async`` dependencies before them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import Forbidden, Scope, ServiceDep, Unauthorized, check_community, require_scope
from api.routes.coordinator import CohortsDep
from recommender.serving import BAND_NAMES, ServiceError, band_label, category_name

router = APIRouter(prefix="/coordinator", include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
KEY_COOKIE, NONCE_COOKIE = "coordinator_key", "coordinator_nonce"
SUPPRESSED_TEXT = "已隐藏 (少于10人)"
# Bands and categories are named as in the residents' reasons (one table of names).
BAND_LABELS = {"all": "全部年龄段", **{b: band_label(b, "zh") for b in BAND_NAMES}}
ACTION_LABELS = {"approve": "批准", "reject": "否决", "pin": "置顶"}
MAX_FORM_BYTES = 16_384
MAX_NOTE = 2000
# What the page may load: nothing but itself (inline styles, inline SVG), forms to itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}
_check_key = require_scope("coordinator", "admin")


def _figure(value, digits: int = 0) -> str:
    """A figure as text: the suppression text in place of a suppressed one, never its value."""
    if isinstance(value, dict) and value.get("suppressed") is True:
        return SUPPRESSED_TEXT
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _percent(value) -> str:
    if isinstance(value, dict) and value.get("suppressed") is True:
        return SUPPRESSED_TEXT
    return "—" if value is None else f"{100 * float(value):.0f}%"


TEMPLATES.env.filters.update(figure=_figure, percent=_percent,
                             band=lambda b: BAND_LABELS.get(b, b),
                             category=lambda c: category_name(c, "zh") if c else "—",
                             action=lambda a: ACTION_LABELS.get(a, a))


# -- charts: geometry for the inline SVG the template draws -------------------------------------
BAR_WIDTH = 120  # px of the longest bar in a row's demand-against-seats chart


def _suppressed(value) -> bool:
    return isinstance(value, dict) and value.get("suppressed") is True


def demand_bars(items: list[dict]) -> list[dict]:
    """Per suggested course, the widths of its expected-demand and seats-left bars on one scale
    shared by the table (so rows compare)."""
    top = max([1.0, *(max(i["expected_demand"], i["seats_left"]) for i in items)])
    return [{"demand": round(BAR_WIDTH * i["expected_demand"] / top, 1),
             "seats": round(BAR_WIDTH * max(i["seats_left"], 0) / top, 1)} for i in items]


def category_chart(items: list[dict]) -> dict:
    """Expected demand summed per category over the open courses, as horizontal bars."""
    totals: dict[str, float] = {}
    for item in items:
        name = category_name(item["category"], "zh") if item["category"] else "—"
        totals[name] = totals.get(name, 0.0) + float(item["expected_demand"])
    top = max([1e-9, *totals.values()])
    rows = [{"label": name, "value": f"{value:.1f}", "width": round(260 * value / top, 1),
             "y": 8 + 30 * k} for k, (name, value) in
            enumerate(sorted(totals.items(), key=lambda kv: -kv[1]))]
    return {"rows": rows, "height": 16 + 30 * max(len(rows), 1)}


def _last_months(as_of: str, n: int = 12) -> list[str]:
    year, month = int(as_of[:4]), int(as_of[5:7])
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def monthly_chart(monthly: list[dict], as_of: str) -> dict:
    """Enrolments per month over the twelve months up to ``as_of``, as vertical bars; a
    suppressed month is drawn as a hatched full-height bar with no figure, a month without
    any record with no bar (``value`` None)."""
    by_month = {m["month"]: m["enrolments"] for m in monthly}
    months = _last_months(as_of)
    shown = [v for v in (by_month.get(m) for m in months) if isinstance(v, int)]
    top = max([1, *shown])
    bars = []
    for k, month in enumerate(months):
        value = by_month.get(month)
        hidden = _suppressed(value)
        count = None if hidden or value is None else int(value)
        height = 150 if hidden else round(150 * (count or 0) / top, 1)
        bars.append({"x": 34 + 33.5 * k, "y": 170 - height, "height": height, "hidden": hidden,
                     "label": f"{int(month[5:])}月", "value": count, "month": month,
                     # the year under the first month and under each January
                     "year": f"{month[:4]}年" if k == 0 or month[5:] == "01" else ""})
    return {"bars": bars, "top": top}


# -- session and CSRF ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Visit:
    """Who is asking: the browser's nonce (``fresh`` when made now), and the signed-in key's
    scope, or the status that refuses it (401 no or unknown key, 403 a key of another role)."""

    nonce: str
    fresh: bool
    scope: Scope | None
    status: int
    reason: str = ""


def _secret(request: Request) -> bytes:
    """The CSRF secret: the same in every worker of one deployment, changed with its keys."""
    state = request.app.state
    if getattr(state, "page_secret", None) is None:
        keys = "\n".join(sorted(state.key_roles))
        state.page_secret = hashlib.sha256(f"coordinator-page\0{keys}".encode()).digest()
    return state.page_secret


def csrf_token(request: Request, nonce: str) -> str:
    return hmac.new(_secret(request), nonce.encode(), hashlib.sha256).hexdigest()


async def visit(request: Request) -> Visit:
    """The browser's nonce and the scope of the key in its cookie (checked like the header)."""
    nonce = request.cookies.get(NONCE_COOKIE, "")
    fresh = not (32 <= len(nonce) <= 128 and nonce.isalnum())
    if fresh:
        nonce = secrets.token_hex(32)
    try:
        scope = await _check_key(request, request.cookies.get(KEY_COOKIE) or None)
    except Unauthorized as exc:
        return Visit(nonce, fresh, None, 401, exc.reason)
    except Forbidden as exc:
        return Visit(nonce, fresh, None, 403, exc.reason)
    return Visit(nonce, fresh, scope, 200)


async def form_fields(request: Request) -> dict[str, str]:
    """An url-encoded form body as ``{name: first value}`` (no multipart: the forms send none)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


VisitDep = Annotated[Visit, Depends(visit)]
FormDep = Annotated[dict[str, str], Depends(form_fields)]


def _token_ok(request: Request, seen: Visit, fields: dict[str, str]) -> bool:
    """A POST is ours when its token is the HMAC of the nonce this browser holds."""
    token = fields.get("csrf", "")
    return not seen.fresh and hmac.compare_digest(token.encode(),
                                                  csrf_token(request, seen.nonce).encode())


def _finish(request: Request, response: Response, nonce: str | None = None,
            key: str | None = None, clear: bool = False) -> Response:
    """Add the security headers and set (or clear) the cookies."""
    response.headers.update(SECURITY_HEADERS)
    secure = request.url.scheme == "https"
    options = {"httponly": True, "samesite": "strict", "secure": secure, "path": "/coordinator"}
    if clear:
        for name in (KEY_COOKIE, NONCE_COOKIE):
            response.delete_cookie(name, **options)
        return response
    if nonce is not None:
        response.set_cookie(NONCE_COOKIE, nonce, **options)
    if key is not None:
        response.set_cookie(KEY_COOKIE, key, **options)
    return response


def _render(request: Request, seen: Visit, name: str, status: int = 200, **context) -> Response:
    response = TEMPLATES.TemplateResponse(
        request, name, {"csrf": csrf_token(request, seen.nonce), "scope": seen.scope,
                        **context}, status_code=status)
    return _finish(request, response, nonce=seen.nonce if seen.fresh else None)


def _problem(request: Request, seen: Visit, status: int, message: str) -> Response:
    titles = {403: "无权访问", 404: "未找到", 409: "模型尚未就绪", 422: "输入有误"}
    return _render(request, seen, "coordinator/error.html", status=status,
                   title=titles.get(status, "出错了"), message=message)


def _refused(request: Request, seen: Visit) -> Response | None:
    """The answer to a visit that may not see the page (None when it may)."""
    if seen.status == 401:
        return _finish(request, RedirectResponse("/coordinator/login", status_code=303),
                       nonce=seen.nonce if seen.fresh else None)
    if seen.status == 403:
        return _problem(request, seen, 403, "该密钥没有协调员或管理员权限。")
    return None


def _back(community: str, band: str, horizon: str) -> str:
    query = urlencode({"community": community, "band": band, "horizon": horizon})
    return f"/coordinator?{query}#decisions"


# -- sign in and out --------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, seen: VisitDep):
    """The sign-in form (a signed-in coordinator goes straight to the page)."""
    if seen.status == 200:
        return _finish(request, RedirectResponse("/coordinator", status_code=303))
    return _render(request, seen, "coordinator/login.html")


@router.post("/login")
async def login(request: Request, seen: VisitDep, fields: FormDep):
    """Check the key like the header; keep it in the cookie, with a new nonce."""
    if not _token_ok(request, seen, fields):
        return _problem(request, seen, 403, "表单已过期或来源无效，请刷新页面后重试。")
    key = fields.get("key", "").strip()
    try:
        await _check_key(request, key or None)
    except Unauthorized:
        return _render(request, seen, "coordinator/login.html", status=401,
                       error="密钥无效，请检查后重试。")
    except Forbidden:
        return _problem(request, seen, 403, "该密钥没有协调员或管理员权限。")
    return _finish(request, RedirectResponse("/coordinator", status_code=303),
                   nonce=secrets.token_hex(32), key=key)


@router.post("/logout")
def logout(request: Request, seen: VisitDep, fields: FormDep):
    """Forget the key and the nonce."""
    if not _token_ok(request, seen, fields):
        return _problem(request, seen, 403, "表单已过期或来源无效，请刷新页面后重试。")
    return _finish(request, RedirectResponse("/coordinator/login", status_code=303), clear=True)


# -- the page ---------------------------------------------------------------------------------
@router.get("")
def page(request: Request, seen: VisitDep, cohorts: CohortsDep, service: ServiceDep,
         community: str | None = None, band: str = "all", horizon: str = "30"):
    """A cohort's suggestions, demand by category, participation, unmet demand and decisions."""
    refused = _refused(request, seen)
    if refused is not None:
        return refused
    scope = seen.scope
    try:
        listing = cohorts.cohorts()["cohorts"]
        if scope.communities is not None:
            listing = [c for c in listing if c["community_id"] in scope.communities]
        communities = list(dict.fromkeys((c["community_id"], c["community_name"])
                                         for c in listing))
        community = community or (communities[0][0] if communities else "all")
        days = int(horizon) if horizon.isdigit() and 1 <= int(horizon) <= 365 else 30
        check_community(scope, community)
        figures = _cohort_figures(service, cohorts, community, band, days)
    except ServiceError as exc:
        return _problem(request, seen, exc.status, exc.reason)
    size = next((c for c in listing if (c["community_id"], c["band"]) == (community, band)), {})
    return _render(request, seen, "coordinator/page.html", communities=communities,
                   bands=["all", *BAND_NAMES], community=community, band=band, horizon=days,
                   cohort=size, suppressed_text=SUPPRESSED_TEXT, **figures)


def _cohort_figures(service, cohorts, community: str, band: str, days: int) -> dict:
    """What the page shows about one cohort, charts included."""
    suggested = cohorts.suggestions(community, band, horizon_days=days, limit=200,
                                    decisions=service.decisions.for_cohort(community, band))
    analytics = cohorts.analytics(community, band)
    decisions = service.decisions.listed(community, band)
    titles = {r["course_id"]: r["title"] for r in service.holder.snapshot().catalogue.records}
    items = suggested["items"][:20]
    return {"suggested": suggested, "items": items, "analytics": analytics,
            "row_bars": demand_bars(items),
            "category_chart": category_chart(suggested["items"]),
            "monthly_chart": monthly_chart(analytics["monthly"], analytics["as_of"]),
            "decisions": [{**d, "title": titles.get(d["course_id"], d["course_id"])}
                          for d in reversed(decisions)]}


@router.post("/decisions")
def decide(request: Request, seen: VisitDep, fields: FormDep, service: ServiceDep):
    """Record an approve, reject or pin from the page, then back to the cohort (303)."""
    refused = _refused(request, seen)
    if refused is not None:
        return refused
    if not _token_ok(request, seen, fields):
        return _problem(request, seen, 403, "表单已过期或来源无效，请刷新页面后重试。")
    community, band = fields.get("community", ""), fields.get("band", "")
    action, note = fields.get("action", ""), fields.get("note", "").strip()
    if action not in ACTION_LABELS:
        return _problem(request, seen, 422, f"未知操作 action={action[:20]!r}")
    if len(note) > MAX_NOTE:
        return _problem(request, seen, 422, f"备注过长：{len(note)} 字（最多 {MAX_NOTE} 字）")
    try:
        check_community(seen.scope, community)
        service.decisions.add(community_id=community, band=band,
                              course_id=fields.get("course_id", ""), action=action,
                              note=note or None, decided_by=seen.scope.who)
    except ServiceError as exc:
        return _problem(request, seen, exc.status, exc.reason)
    return _finish(request, RedirectResponse(
        _back(community, band, fields.get("horizon", "30")), status_code=303))


@router.post("/decisions/{decision_id}/undo")
def undo(decision_id: int, request: Request, seen: VisitDep, fields: FormDep,
         service: ServiceDep):
    """Undo a decision from the page, then back to its cohort (303)."""
    refused = _refused(request, seen)
    if refused is not None:
        return refused
    if not _token_ok(request, seen, fields):
        return _problem(request, seen, 403, "表单已过期或来源无效，请刷新页面后重试。")
    try:
        found = service.decisions.get(decision_id)
        check_community(seen.scope, found["community_id"])
        service.decisions.undo(decision_id, by=seen.scope.who)
    except ServiceError as exc:
        return _problem(request, seen, exc.status, exc.reason)
    return _finish(request, RedirectResponse(
        _back(found["community_id"], found["band"], fields.get("horizon", "30")),
        status_code=303))
