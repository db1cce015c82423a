"""A small demo contact center, loaded on the first start of an empty database."""

from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.agents.schemas import AgentCreate, Capacity
from app.auth import service as users
from app.auth.models import Role
from app.auth.schemas import UserCreate
from app.channels.chat.models import ChatSite
from app.channels.chat.schemas import as_origin
from app.channels.chat.sites import new_identity_secret
from app.channels.email.models import EmailAddress
from app.core.events import SYSTEM_ACTOR
from app.core.logging import get_logger
from app.core.settings import Settings
from app.customers import service as customers
from app.customers.models import LifecycleStage, Tier
from app.customers.schemas import CustomerCreate
from app.ivr import service as ivr
from app.ivr.flow import demo_flow
from app.ivr.schemas import FlowCreate
from app.queues import service as queues
from app.queues.hours import WEEKDAYS, BusinessHours, OpeningSpan
from app.queues.schemas import QueueCreate, ServiceLevel
from app.skills import service as skills
from app.skills.schemas import SkillCreate, SkillLevel
from app.tickets.models import ComplaintCategory

log = get_logger(__name__)

SKILLS = {
    "general": "Anything a customer may ask first",
    "billing": "Invoices, payments, refunds",
    "tech": "Technical support",
    "mandarin": "Speaks Mandarin",
    "vip": "Trusted with platinum and gold customers",
}

AGENTS = [
    ("mei", "Mei Chen", {"general": 4, "billing": 5, "mandarin": 5, "vip": 4}),
    ("tom", "Tom Becker", {"general": 3, "tech": 5}),
    ("ana", "Ana Souza", {"general": 5, "billing": 3, "tech": 2}),
    ("raj", "Raj Patel", {"general": 2, "tech": 4, "vip": 3}),
]

# What a caller keys at the demo flow's account number prompt to be known (Luhn-valid).
ACCOUNT_NUMBERS = {"Jonas Meyer": ["12345674"]}

CUSTOMERS = [
    (
        "Li Wei",
        Tier.platinum,
        LifecycleStage.stability,
        "98000",
        "zh-CN",
        "+86 138 0013 8000",
        "li.wei@example.com",
    ),
    (
        "Grace Hopper",
        Tier.gold,
        LifecycleStage.formation,
        "42000",
        "en",
        "+1 415 555 0132",
        "grace@example.com",
    ),
    (
        "Jonas Meyer",
        Tier.iron,
        LifecycleStage.exploration,
        "3100",
        "de",
        "+49 30 901820",
        "jonas.meyer@example.de",
    ),
    (
        "Sam Doe",
        Tier.lead,
        LifecycleStage.decline,
        "120",
        "en",
        "+44 20 7946 0958",
        "sam.doe@example.co.uk",
    ),
]


# What complaints are about (step 2) and the root causes found (step 5), for reports' Pareto.
COMPLAINT_CATEGORIES = {
    "complaint": ["billing", "service quality", "delivery", "staff conduct", "product fault"],
    "root_cause": [
        "process gap",
        "system defect",
        "training",
        "supplier",
        "communication",
    ],
}

DEMO_CHAT_SITE = "demo"
# Addresses a server listens on everywhere: no page is ever served from them.
ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104


async def demo_present(session: AsyncSession) -> bool:
    return await users.find_user_by_username(session, "admin") is not None


async def load_demo(session: AsyncSession, settings: Settings) -> dict[str, str]:
    """Create the demo data; returns the generated passwords by username (to print once)."""
    passwords: dict[str, str] = {}
    for name, description in SKILLS.items():
        await skills.create_skill(
            session, SkillCreate(name=name, description=description), actor=SYSTEM_ACTOR
        )
    for username, display, role in (
        ("admin", "Ada Admin", Role.admin),
        ("super", "Sue Pervisor", Role.supervisor),
    ):
        _, generated = await users.create_user(
            session,
            UserCreate(username=username, display_name=display, role=role),
            actor=SYSTEM_ACTOR,
        )
        passwords[username] = generated or ""
    for username, display, levels in AGENTS:
        body = AgentCreate(
            username=username,
            display_name=display,
            capacity=Capacity(),
            skills=[SkillLevel(skill=s, level=lvl) for s, lvl in levels.items()],
            voice_endpoint=f"client:{username}",  # their softphone, for the gateway's bridge
        )
        _, generated = await agents.create_agent(session, body, actor=SYSTEM_ACTOR)
        passwords[username] = generated or ""
    general = await _load_queues(session)
    await _load_flow(session)
    # Mail to the demo's support address goes to the general queue (docs/channels.md).
    session.add(
        EmailAddress(
            address="support@example.com", queue_id=general, display_name="Example support"
        )
    )
    # And mail to complaints@ raises a complaint as well (docs/complaints.md).
    session.add(
        EmailAddress(
            address="complaints@example.com",
            queue_id=general,
            display_name="Example complaints",
            complaints=True,
        )
    )
    for kind, names in COMPLAINT_CATEGORIES.items():
        session.add_all(ComplaintCategory(kind=kind, name=name) for name in names)
    # The widget's demo page (/chat/demo) chats on the general queue too. Its secret is shown
    # to no one: an admin who wants to sign customers rotates it (docs/channels.md).
    session.add(
        ChatSite(
            name=DEMO_CHAT_SITE,
            queue_id=general,
            identity_secret=new_identity_secret(),
            allowed_origins=demo_chat_origins(settings),
        )
    )
    for name, tier, stage, value, language, phone, email in CUSTOMERS:
        customer = CustomerCreate(
            name=name,
            tier=tier,
            lifecycle_stage=stage,
            value=Decimal(value),
            language=language,
            phones=[phone],
            emails=[email],
            account_numbers=ACCOUNT_NUMBERS.get(name, []),
        )
        await customers.create_customer(session, customer, settings=settings, actor=SYSTEM_ACTOR)
    return passwords


async def _load_queues(session: AsyncSession) -> uuid.UUID:
    """The demo's queues; returns the general one's id."""
    office = BusinessHours(
        timezone="Asia/Shanghai",
        weekly={
            day: [OpeningSpan.model_validate({"opens": "09:00", "closes": "18:00"})]
            for day in WEEKDAYS[:5]
        },
    )
    made = []
    for body in (
        QueueCreate(
            name="general",
            description="First line for every channel",
            required_skills=[SkillLevel(skill="general", level=1)],
            # A reply to an answered mail goes back to the agent who answered it for a week.
            follow_up_days=7,
        ),
        QueueCreate(
            name="billing",
            service_level=ServiceLevel(percent=80, seconds=30),
            required_skills=[SkillLevel(skill="billing", level=2)],
            business_hours=office,
        ),
        QueueCreate(
            name="tech-support",
            service_level=ServiceLevel(percent=70, seconds=60),
            required_skills=[SkillLevel(skill="tech", level=2)],
        ),
        QueueCreate(
            name="vip",
            service_level=ServiceLevel(percent=90, seconds=10),
            offer_timeout_seconds=15,
            aging_factor=2.0,
            required_skills=[SkillLevel(skill="vip", level=3)],
        ),
    ):
        made.append(await queues.create_queue(session, body, actor=SYSTEM_ACTOR))
    return made[0].id


async def _load_flow(session: AsyncSession) -> None:
    """The default IVR flow, published (app/ivr/demo_flow.json; docs/ivr.md walks through it):
    a bilingual welcome, platinum and gold straight to the vip queue, a menu for billing (with
    a voicemail after hours), the caller's account number, or a callback."""
    flow = FlowCreate(
        name="Main line",
        description="The demo's default flow, for every number with no flow of its own",
        document=demo_flow(),
        publish=True,
        is_default=True,
    )
    await ivr.create_flow(session, flow, actor=SYSTEM_ACTOR)


def demo_chat_origins(settings: Settings) -> list[str]:
    """The page origins the demo's chat site takes: this server as a browser on this machine
    names it (127.0.0.1 or localhost, or CC_HOST), at port 8000 and at CC_PORT, and at
    CC_PUBLIC_BASE_URL when a proxy serves it there."""
    hosts = ["127.0.0.1", "localhost"]
    if settings.host not in ANY_ADDRESS:
        hosts.append(f"[{settings.host}]" if ":" in settings.host else settings.host)
    ports = (8000, settings.port)
    found = [f"http://{host}:{port}" for port in ports for host in hosts]
    if settings.public_base_url:
        public = urlsplit(settings.public_base_url)
        found.append(f"{public.scheme}://{public.netloc}")
    origins = []
    for origin in found:
        try:
            origins.append(as_origin(origin))
        except ValueError:  # a CC_HOST that no browser writes as a host: not an origin
            continue
    return list(dict.fromkeys(origins))


def log_passwords(passwords: dict[str, str]) -> None:
    for username, password in passwords.items():
        log.warning(
            "demo user created; this password is shown once", username=username, password=password
        )
