"""The app factory: routers, error handlers, the engine's lifespan, /health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from app.agents.api import router as agents_router
from app.auth.api import router as auth_router
from app.auth.login_limits import LoginLimits
from app.channels import notices
from app.channels import replies as channel_replies
from app.channels.chat.api import router as chat_router
from app.channels.chat.chats import ChatRooms
from app.channels.chat.leaving import AfterHours
from app.channels.chat.sites_api import router as chat_sites_router
from app.channels.chat.sweep import ChatSweep
from app.channels.chat.widget import router as chat_widget_router
from app.channels.email.api import router as email_router
from app.channels.email.complaints import ComplaintMail
from app.channels.email.inbound import MailIn
from app.channels.email.listener import SmtpListener
from app.channels.messages_api import router as messages_router
from app.core import pg, security
from app.core.collector import tune_for_serving
from app.core.courier import OutboxCourier
from app.core.db import create_engine, create_sessionmaker, database_answers
from app.core.errors import document_error_bodies, install_error_handlers
from app.core.hub import EventHub
from app.core.lease import ReplicaLease
from app.core.logging import RequestIdMiddleware, configure_logging, get_logger
from app.core.senders import HttpSender, Sender, Senders
from app.core.settings import Settings, get_settings
from app.core.smtp_sender import SmtpSender
from app.customers.api import router as customers_router
from app.desk.api import router as desk_router
from app.desk.connection import Replies
from app.desk.registry import OpenDesks
from app.desk.rest import agents_router as desk_agents_router
from app.desk.rest import router as desk_rest_router
from app.desk.screen_pop import ScreenPopDetails
from app.interactions import service as interactions
from app.interactions.api import document_intake_body
from app.interactions.api import router as interactions_router
from app.interactions.intake import Intake
from app.ivr.api import router as ivr_router
from app.ivr.bridge import Bridge
from app.ivr.call_events_api import router as voice_events_router
from app.ivr.calls import Switchboard
from app.ivr.calls_api import router as call_records_router
from app.ivr.webhooks import router as twilio_webhooks_router
from app.queues.api import router as queues_router
from app.routing.arrivals import Arrivals
from app.routing.matcher import Matcher
from app.routing.offers import OfferWriter
from app.routing.presence import Presence
from app.skills.api import router as skills_router
from app.supervisor import prometheus
from app.supervisor.actions import router as supervisor_actions_router
from app.supervisor.api import router as supervisor_router
from app.supervisor.board import LiveBoard
from app.supervisor.live import router as live_router
from app.supervisor.outbox import router as outbox_router
from app.supervisor.reports_api import router as reports_router
from app.supervisor.rollups import Rollups
from app.supervisor.route_timer import RouteTimer
from app.supervisor.wallboard import router as wallboard_router
from app.tickets.acts import CustomerNotices
from app.tickets.answer_page import router as complaint_answer_router
from app.tickets.api import router as complaints_router
from app.tickets.reports_api import router as complaint_reports_router
from app.tickets.sweep import ComplaintSweep
from app.workforce.api import router as workforce_router

log = get_logger(__name__)

DESCRIPTION = """
A contact-center backend: voice, email and chat in one queue, skill- and tier-based routing,
and five-step complaint tracking.

Log in at `POST /v1/auth/login`, then send `Authorization: Bearer <token>`.
Every error is `{"error": <code>, "detail": <what is wrong>, "fields": [...]}`.
"""


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["up", "down"]


def app_from_environment() -> FastAPI:
    """The app of one worker process started by `serve --workers N` (settings from the
    environment, where `serve` has put the database URL it resolved)."""
    settings = get_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    if not settings.database_url:
        raise RuntimeError("a worker needs DATABASE_URL; start workers with `contactcenter serve`")
    app = create_app(settings, settings.database_url)
    tune_for_serving()
    return app


def _document_what_fastapi_cannot_see(app: FastAPI) -> None:
    """The intake's body (it reads it itself) and the error bodies (the handlers write them)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            document_intake_body(schema)
            document_error_bodies(schema)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


DOCS_ASSETS = "/docs-assets"


def _serve_the_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with their scripts and styles served from here, out of
    the fastapi-offline package: FastAPI's own pages load them from a CDN, and were blank
    without internet. No fonts from elsewhere, and no validator badge (Swagger UI's calls an
    outside service)."""
    app.mount(DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs")
    icon = f"{DOCS_ASSETS}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title}: Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{icon}",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title}: ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{icon}",
            with_google_fonts=False,
        )


def outbox_senders(settings: Settings) -> Senders:
    """The senders the outbox's messages name, with their credentials from the settings."""
    senders: list[Sender] = []
    if settings.twilio_account_sid and settings.twilio_auth_token:
        senders.append(
            HttpSender(
                "twilio",
                base_url=settings.twilio_api_url,
                basic_auth=(
                    settings.twilio_account_sid,
                    settings.twilio_auth_token.get_secret_value(),
                ),
                timeout=settings.outbox_send_timeout_seconds,
            )
        )
    if settings.smtp_relay_host:
        senders.append(smtp_sender(settings, settings.smtp_relay_host))
    return Senders(senders)


def smtp_sender(settings: Settings, host: str) -> SmtpSender:
    """The `smtp` sender: replies by mail to the relay the settings name."""
    credentials = None
    if settings.smtp_relay_username and settings.smtp_relay_password:
        credentials = (
            settings.smtp_relay_username,
            settings.smtp_relay_password.get_secret_value(),
        )
    return SmtpSender(
        "smtp",
        host=host,
        port=settings.smtp_relay_port,
        credentials=credentials,
        starttls=settings.smtp_relay_starttls,
        timeout=settings.smtp_relay_timeout_seconds,
    )


async def _listening(listener: SmtpListener, settings: Settings) -> bool:
    """Start the SMTP listener. A port asked for (CC_SMTP_PORT) that cannot be bound stops
    the service; development's default one, taken by another program, only leaves it without
    a listener, said in the log."""
    try:
        await listener.start()
    except OSError as error:
        if settings.smtp_port is not None:
            raise
        log.warning("email.smtp_not_listening", port=settings.smtp_listener_port, error=str(error))
        return False
    return True


def create_app(settings: Settings, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, database_url)
        app.state.engine = engine
        app.state.sessions = create_sessionmaker(engine)
        # Offers made and missed are counted from what this replica commits (Prometheus).
        hub = EventHub(database_url, on_published=prometheus.count_offers)
        # Every writer on the hot pool publishes its events; the hub announces them.
        app.state.pg = await pg.create_pool(
            database_url, size=settings.db_hot_pool_size, on_connect=hub.own
        )
        app.state.login_limits = LoginLimits(app.state.pg, settings)
        # Offers carry the screen pop, read by their own write.
        writer = OfferWriter(ScreenPopDetails())
        # A supervisor's offer to a named agent goes through the same writer.
        app.state.offer_writer = writer
        matcher = Matcher(
            database_url,
            hub,
            tick=settings.matcher_tick_seconds,
            silence=timedelta(seconds=settings.silence_seconds),
            writer=writer,
        )
        presence = Presence(app.state.sessions)
        app.state.hub, app.state.matcher, app.state.presence = hub, matcher, presence
        # Desks are in routing while this replica's lease is live; when it lapses they close.
        app.state.open_desks = open_desks = OpenDesks()
        app.state.lease = lease = ReplicaLease(
            database_url, seconds=settings.lease_seconds, on_lapse=open_desks.lease_lapsed
        )
        # The one way in for every channel; routing offers an arrival at once when it can.
        app.state.intake = Intake(
            pool=app.state.pg,
            sessions=app.state.sessions,
            settings=settings,
            hub=hub,
            router=Arrivals(matcher, writer),
        )
        # Mail in, by SMTP (when the settings give the listener a port) and by the webhook.
        app.state.mail_in = mail_in = MailIn(
            pool=app.state.pg,
            intake=app.state.intake,
            settings=settings,
            complaints=ComplaintMail(app.state.sessions),
        )
        smtp_port = settings.smtp_listener_port
        app.state.smtp_listener = listener = (
            None
            if smtp_port is None
            else SmtpListener(mail_in, host=settings.smtp_host or settings.host, port=smtp_port)
        )
        # What the center sends out, sent from here once its commit wakes this courier.
        app.state.outbox = courier = OutboxCourier.from_settings(
            database_url, outbox_senders(settings), settings
        )
        # Live calls, whatever their gateway; the bridge connects the ones agents accept.
        app.state.switchboard = switchboard = Switchboard(
            sessions=app.state.sessions,
            hub=hub,
            outbox=courier,
            intake=app.state.intake,
            settings=settings,
            wake_matcher=matcher.wake,
        )
        bridge = Bridge(hub, switchboard, app.state.pg)
        # Web chat: the customers' side of every chat on this replica's sockets.
        app.state.chats = ChatRooms(
            pool=app.state.pg,
            sessions=app.state.sessions,
            intake=app.state.intake,
            hub=hub,
            wake_matcher=matcher.wake,
            replica_id=lambda: lease.id,
        )
        app.state.chat_after_hours = AfterHours(pool=app.state.pg, intake=app.state.intake)
        chat_sweep = ChatSweep(app.state.pg, app.state.chats)
        # Complaints' deadlines: owners warned, complaints escalated, replies deemed accepted.
        complaint_sweep = ComplaintSweep(
            app.state.sessions,
            notices=app.state.customer_notices,
            link_base=settings.public_base_url or "",
            hub=hub,
            outbox=courier,
        )
        # The supervisors' live board: one per replica, fed by the hub, shared by their sockets.
        app.state.live_board = live_board = LiveBoard(
            app.state.pg, hub, default_zone=settings.time_zone
        )
        # The reports' roll-up of the log into quarter-hours (one replica a round).
        app.state.rollups = rollups = Rollups(app.state.pg, settings.time_zone)
        await hub.start()
        await live_board.start()
        await lease.start()
        matcher.start()
        presence.start()
        await courier.start()
        bridge.start()
        chat_sweep.start()
        complaint_sweep.start()
        rollups.start()
        if listener is not None and not await _listening(listener, settings):
            listener = app.state.smtp_listener = None
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            await rollups.stop()
            await complaint_sweep.stop()
            await chat_sweep.stop()
            await bridge.stop()
            await courier.stop()
            await presence.stop()
            await matcher.stop()
            await lease.stop()
            await live_board.stop()
            await hub.stop()
            await app.state.pg.close()
            await engine.dispose()

    app = FastAPI(
        title="Contact center",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by _serve_the_docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    # Customers sit below interactions: the customers API asks this whom an agent served.
    app.state.served_customers = interactions.has_served
    # The desk's `reply` is the channels', beside it in the layers: given, not imported.
    desk_replies: Replies = channel_replies.reply_as_holder
    app.state.desk_replies = desk_replies
    # Complaints (layer 6) tell the customer through the channels above them: given too.
    customer_notices: CustomerNotices = notices.tell
    app.state.customer_notices = customer_notices
    security.use_hashing_profile(settings.password_hashing)
    security.limit_concurrent_hashes(settings.password_hash_concurrency)
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(RouteTimer)  # added last, so outermost: it times the whole request
    # Routers are matched in this order, each trying all its routes (about 20 us a route here),
    # so the paths hit on every interaction come first: intake and the desk socket.
    for router in (
        interactions_router,
        desk_router,
        desk_rest_router,
        auth_router,
        customers_router,
        skills_router,
        agents_router,
        desk_agents_router,
        queues_router,
        ivr_router,
        twilio_webhooks_router,
        voice_events_router,
        call_records_router,
        email_router,
        messages_router,
        chat_router,
        chat_sites_router,
        chat_widget_router,
        # Before the complaints' router: /v1/complaints/report is no complaint's id.
        complaint_reports_router,
        complaints_router,
        complaint_answer_router,
        supervisor_router,
        live_router,
        supervisor_actions_router,
        reports_router,
        outbox_router,
        workforce_router,
        prometheus.router,
        wallboard_router,
    ):
        app.include_router(router)
    _document_what_fastapi_cannot_see(app)
    _serve_the_docs(app)

    @app.get(
        "/health",
        tags=["health"],
        summary="Whether the service and its database answer",
        responses={503: {"model": Health, "description": "The database does not answer"}},
    )
    async def health() -> JSONResponse:
        up = await database_answers(app.state.engine)
        body = Health(status="ok" if up else "degraded", database="up" if up else "down")
        return JSONResponse(body.model_dump(), status_code=200 if up else 503)

    return app
