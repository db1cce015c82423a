"""The page behind a step-4 reply's link (`links.PATH` + token), where the customer answers the
reply: whether it resolves their complaint, how satisfied they are (1-5), and a comment.

No login: the token is the key (links.py). Opening the page records nothing, as mail scanners
and link previews open links before people do; only submitting the form records the answer,
through the workflow (`service.act`, as the customer) and in the same transaction marks the link
used. A link works once: one used, expired, replaced by a newer reply's, or whose complaint has
moved on (an agent took the answer by phone, silence deemed it accepted) shows a page saying
which (410); a token that matches nothing, or is not a token's shape, a page saying the link is
not one of ours (404). Never a 500, and the token is never written back into a page or a log
(app/core/logging.py blanks it in every logged path).

Pages, not API: plain HTML, no script (the policy forbids any), outside the OpenAPI document,
like the chat widget's page. The token is in the URL, so every answer asks browsers to send no
Referer and to keep no copy.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import html
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Session
from app.core.errors import AppError
from app.core.inputs import REFUSES_NUL
from app.core.logging import get_logger
from app.core.models import utcnow
from app.tickets import acts, customer_texts, links, service
from app.tickets import policy as policies
from app.tickets.api import context_of
from app.tickets.models import TEXT_LENGTH, AnswerLink, Complaint
from app.tickets.schemas import ActionRecords
from app.tickets.workflow import Action, Actor, Step

log = get_logger(__name__)

# secrets.token_urlsafe(32) (links.issue): 32 bytes in unpadded base64url, 43 characters.
TOKEN_LENGTH = 43
BASE64URL = r"^[A-Za-z0-9_-]+$"
# The longest comment percent-encoded (up to 4 UTF-8 bytes a character, 3 characters a byte),
# with room for the other fields.
MAX_FORM_BYTES = TEXT_LENGTH * 12 + 1024
FORM_TYPE = "application/x-www-form-urlencoded"

Token = Annotated[
    str,
    Path(
        min_length=TOKEN_LENGTH,
        max_length=TOKEN_LENGTH,
        pattern=BASE64URL,
        description="The link's token, as the reply gave it",
    ),
    REFUSES_NUL,
]

STYLE = (
    "body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;background:#f4f5f7;"
    "color:#1d2329}main{max-width:40rem;margin:2rem auto;padding:1.5rem 2rem;"
    "background:#fff;border-radius:8px}h1{font-size:1.5rem}h2{font-size:1.1rem}"
    ".reply{white-space:pre-wrap;border-left:4px solid #8aa4c8;margin:0;padding:.5rem 1rem;"
    "background:#f7f9fc}fieldset{border:1px solid #ccd3dc;border-radius:6px;margin:1rem 0}"
    "label{margin-right:1rem}textarea{width:100%;min-height:6rem;box-sizing:border-box}"
    ".problems,.problem{color:#a4161a}.problems{border:1px solid #a4161a;padding:.5rem 1rem;"
    "border-radius:6px}button{font-size:1rem;padding:.5rem 1.5rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# No script at all, the one inline stylesheet, the form posted back here only, and never in a
# frame (a page that answers for the customer must not be clickjacked).
POLICY = (
    f"default-src 'none'; script-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "no-referrer",  # the URL carries the token
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}


class Refused(Exception):
    """A page in place of the form: why the link does not open it, or why the answer was not
    recorded. `reason` is for the log (never the token)."""

    def __init__(self, status: int, title: str, text: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.title, self.text, self.reason = status, title, text, reason

    def page(self) -> HTMLResponse:
        return page(self.title, f"<p>{html.escape(self.text)}</p>", self.status)


NOT_OURS = Refused(
    404,
    "This link does not work",
    "We do not recognise this link. Please open the whole link from our message about your"
    " complaint (some mail programs break long links over two lines), or contact us quoting"
    " the complaint's reference.",
    "unknown",
)


class AnswerPageRoute(APIRoute):
    """Every answer of these pages is a page with the headers above: a token of the wrong
    shape (a link cut short) is the "not ours" page rather than the API's JSON 422, and a
    refusal is its page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_as_page(request: Request) -> Response:
            try:
                response = await handle(request)
            except RequestValidationError:  # the path's token is the only parameter checked
                response = _refused(NOT_OURS, "malformed")
            except Refused as refused:
                response = _refused(refused, refused.reason)
            response.headers.update(PAGE_HEADERS)
            return response

        return handle_as_page


def _refused(refused: Refused, reason: str) -> HTMLResponse:
    log.info("complaints.answer_link_refused", reason=reason, status=refused.status)
    return refused.page()


router = APIRouter(tags=["complaints"], include_in_schema=False, route_class=AnswerPageRoute)


class Resolves(enum.StrEnum):
    yes = "yes"
    no = "no"


class AnswerForm(BaseModel):
    """The form as posted (read by hand: the project parses forms without python-multipart).
    Which fields an answer needs depends on the others: `needs` says."""

    model_config = ConfigDict(extra="ignore")  # a submit button's name, say

    resolves: Resolves | None = None
    satisfaction: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: Annotated[str, StringConstraints(max_length=TEXT_LENGTH), REFUSES_NUL] = ""

    def needs(self) -> dict[str, str]:
        """What is missing, by field, for a person."""
        if self.resolves is None:
            return {"resolves": "Please say whether our reply resolves your complaint."}
        if self.resolves is Resolves.yes and self.satisfaction is None:
            return {"satisfaction": "Please choose a score from 1 to 5."}
        if self.resolves is Resolves.no and not self.comment.strip():
            return {"comment": "Please tell us what is still missing or wrong."}
        return {}


# What each field's problem is when the form itself is malformed (not the browser's doing).
FIELD_PROBLEMS = {
    "resolves": "Please choose yes or no.",
    "satisfaction": "Please choose a score from 1 to 5.",
}


@dataclass
class Opened:
    """A link that may still be answered, its complaint, and the calendar its times read in."""

    link: AnswerLink
    complaint: Complaint
    calendar: policies.Calendar


@router.get("/complaints/answer/{token}", response_class=HTMLResponse)
async def answer_form(token: Token, session: Session) -> HTMLResponse:
    """The form (recording nothing: a mail scanner opens it as a person does)."""
    link = await links.find(session, token)
    if link is None:
        raise NOT_OURS
    complaint = await session.get(Complaint, link.complaint_id)
    assert complaint is not None, "a link's complaint cascades with it"
    opened = await _still_open(session, link, complaint, utcnow())
    return form_page(opened, AnswerForm(), {}, 200)


@router.post("/complaints/answer/{token}", response_class=HTMLResponse)
async def record_answer(token: Token, session: Session, request: Request) -> HTMLResponse:
    """Record the answer as the customer's, once: the complaint is locked before its link (the
    order the API's actions lock them in), so of two answers sent at once the second finds the
    link used."""
    complaint_id = await session.scalar(
        select(AnswerLink.complaint_id).where(AnswerLink.token_hash == links.token_hash(token))
    )
    if complaint_id is None:
        raise NOT_OURS
    complaint = await service.find(session, str(complaint_id), lock=True)
    link = await links.find(session, token, lock=True)
    assert link is not None, "a link is never deleted but with its complaint"
    context = context_of(request)
    opened = await _still_open(session, link, complaint, context.now)
    form, problems = await _posted(request)
    problems = problems or form.needs()
    if problems:
        return form_page(opened, form, problems, 422)
    who = acts.Who(Actor.customer, f"customer:{complaint.customer_id}")
    try:
        await service.act(session, complaint, *_action(form), who, context)
    except AppError as error:  # the checks above leave none; said as a page if one comes
        raise Refused(
            error.status_code, "We could not record your answer", error.detail, error.code
        ) from None
    link.used_at = context.now
    log.info(
        "complaints.answered",
        reference=complaint.reference,
        accepted=form.resolves.value if form.resolves else None,
    )
    return thanks_page(complaint, form)


def _action(form: AnswerForm) -> tuple[Action, ActionRecords]:
    if form.resolves is Resolves.yes:
        records = ActionRecords(
            answer=form.comment.strip() or "Accepted", satisfaction=form.satisfaction
        )
        return Action.customer_accepts, records
    records = ActionRecords(answer=form.comment.strip(), satisfaction=form.satisfaction)
    return Action.customer_rejects, records


async def _still_open(
    session: AsyncSession, link: AnswerLink, complaint: Complaint, now: datetime
) -> Opened:
    """The link and its complaint, if it may be answered now; else the page saying why not."""
    policy = await policies.load(session)
    calendar = await policies.calendar_for(session, complaint.queue_id, policy)
    reference = complaint.reference
    if link.used_at is not None:
        raise Refused(
            410,
            "You have answered already",
            f"We recorded your answer about complaint {reference} on "
            f"{customer_texts.when(link.used_at, calendar)}. Thank you. If anything has changed,"
            f" contact us quoting {reference}.",
            "used",
        )
    if await _replaced(session, link):
        raise Refused(
            410,
            "We have sent you a newer reply",
            f"This link belongs to an earlier reply about complaint {reference}. Please answer"
            " through the link in our newest message about it.",
            "replaced",
        )
    if link.expires_at <= now:
        raise Refused(
            410,
            "This link has expired",
            f"The time to answer our reply about complaint {reference} ended on "
            f"{customer_texts.when(link.expires_at, calendar)}. If our reply does not resolve"
            f" your complaint, contact us quoting {reference}.",
            "expired",
        )
    if Step(complaint.step) is not Step.reply:
        raise Refused(
            410,
            "Your complaint has moved on",
            f"Complaint {reference} is no longer waiting for your answer to this reply (you may"
            f" have given it to us another way). To tell us more, contact us quoting {reference}.",
            "moved_on",
        )
    return Opened(link, complaint, calendar)


async def _replaced(session: AsyncSession, link: AnswerLink) -> bool:
    """Whether a newer reply's link replaced this one (links.issue expired it)."""
    newer = exists().where(
        AnswerLink.complaint_id == link.complaint_id, AnswerLink.created_at > link.created_at
    )
    return bool(await session.scalar(select(newer)))


async def _posted(request: Request) -> tuple[AnswerForm, dict[str, str]]:
    """The form as sent, and its fields' problems (a form no browser of ours sends: a score
    out of range, a NUL, a comment too long); what it holds is kept to show again."""
    body = await _capped_body(request)
    sent_as = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and sent_as != FORM_TYPE:  # an empty form is one with nothing chosen
        raise Refused(
            415,
            "We could not read your answer",
            f"Please send the form as {FORM_TYPE}.",
            "form_type",
        )
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=20
        )
    except ValueError:
        raise Refused(
            413, "We could not read your answer", "The form has too many fields.", "form_fields"
        ) from None
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    # An unchosen choice is no value (browsers send none; a hand-made form may send "").
    fields = {name: value for name, value in values.items() if value or name == "comment"}
    try:
        return AnswerForm.model_validate(fields), {}
    except ValidationError as error:
        problems: dict[str, str] = {}
        for problem in error.errors(include_url=False, include_input=False):
            name = str(problem["loc"][0])
            said = str(problem["msg"]).removeprefix("Value error, ")
            problems.setdefault(name, FIELD_PROBLEMS.get(name, said))
        return _kept(fields), problems


def _kept(fields: dict[str, str]) -> AnswerForm:
    """What of a refused form can be shown again: each field that is valid on its own."""
    kept: dict[str, object] = {}
    for name in AnswerForm.model_fields:
        try:
            kept |= AnswerForm.model_validate({name: fields[name]}).model_dump(include={name})
        except (KeyError, ValidationError):
            continue
    return AnswerForm.model_validate(kept)


async def _capped_body(request: Request) -> bytes:
    too_large = Refused(
        413,
        "We could not read your answer",
        f"A comment is at most {TEXT_LENGTH} characters.",
        "form_size",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise too_large
    return bytes(body)


# --- the pages -----------------------------------------------------------------------------------


def page(title: str, body: str, status: int) -> HTMLResponse:
    """A whole page: `title` is escaped here, `body` is HTML its caller escaped."""
    return HTMLResponse(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>\n{body}\n</main></body></html>\n",
        status_code=status,
    )


def form_page(
    opened: Opened, form: AnswerForm, problems: dict[str, str], status: int
) -> HTMLResponse:
    """The question, with what was typed and what is missing (the form posts back to this very
    URL: no action attribute, so the token is written nowhere in the page)."""
    complaint = opened.complaint
    e = html.escape
    due = customer_texts.when(opened.link.expires_at, opened.calendar)
    body = (
        f'<p>Complaint <strong class="reference">{e(complaint.reference)}</strong>: '
        f'<span class="summary">{e(complaint.summary)}</span></p>'
        f'<h2>Our reply</h2><blockquote class="reply">{e(complaint.reply)}</blockquote>'
        f"{_problems(problems)}"
        '<form method="post">'
        f"{_resolves(form, problems)}{_satisfaction(form, problems)}{_comment(form, problems)}"
        f"<p>Please answer by {e(due)}; if we have not heard from you by then, we will take it"
        " that our reply resolves your complaint.</p>"
        '<button type="submit">Send my answer</button></form>'
    )
    return page(f"Your complaint {complaint.reference}", body, status)


def _problems(problems: dict[str, str]) -> str:
    if not problems:
        return ""
    items = "".join(
        f'<li><a href="#{html.escape(name)}">{html.escape(text)}</a></li>'
        for name, text in problems.items()
    )
    return (
        f'<div class="problems" role="alert"><p>Please check your answer:</p><ul>{items}</ul></div>'
    )


def _problem(problems: dict[str, str], name: str) -> str:
    text = problems.get(name)
    return "" if text is None else f'<p class="problem" id="{name}-problem">{html.escape(text)}</p>'


def _radio(name: str, value: str, label: str, *, chosen: bool, first: bool) -> str:
    """A choice; the first of its group carries the group's id (the problems' links)."""
    anchor = f' id="{name}"' if first else ""
    checked = " checked" if chosen else ""
    return (
        f'<label><input type="radio" name="{name}" value="{value}"{anchor}{checked}>'
        f" {html.escape(label)}</label>"
    )


def _resolves(form: AnswerForm, problems: dict[str, str]) -> str:
    choices = "".join(
        _radio("resolves", value.value, label, chosen=form.resolves is value, first=first)
        for first, (value, label) in zip(
            (True, False), ((Resolves.yes, "Yes"), (Resolves.no, "No")), strict=True
        )
    )
    return (
        "<fieldset><legend>Does this resolve your complaint?</legend>"
        f"{_problem(problems, 'resolves')}{choices}</fieldset>"
    )


SCORES = {
    1: "very dissatisfied",
    2: "dissatisfied",
    3: "neither",
    4: "satisfied",
    5: "very satisfied",
}


def _satisfaction(form: AnswerForm, problems: dict[str, str]) -> str:
    choices = "".join(
        _radio(
            "satisfaction",
            str(score),
            f"{score} ({label})",
            chosen=form.satisfaction == score,
            first=score == 1,
        )
        for score, label in SCORES.items()
    )
    return (
        "<fieldset><legend>How satisfied are you with how we handled your complaint?"
        " (needed when it is resolved)</legend>"
        f"{_problem(problems, 'satisfaction')}{choices}</fieldset>"
    )


def _comment(form: AnswerForm, problems: dict[str, str]) -> str:
    return (
        '<p><label for="comment">Anything you want to tell us (needed when it is not'
        " resolved: what is still missing or wrong)</label></p>"
        f"{_problem(problems, 'comment')}"
        f'<textarea id="comment" name="comment" maxlength="{TEXT_LENGTH}">'
        f"{html.escape(form.comment)}</textarea>"
    )


def thanks_page(complaint: Complaint, form: AnswerForm) -> HTMLResponse:
    reference = html.escape(complaint.reference)
    if form.resolves is Resolves.yes:
        text = (
            f"We have recorded that our reply resolves your complaint {reference}, and your"
            f" score of {form.satisfaction} out of 5. We look at every complaint to improve how"
            " we work."
        )
    else:
        text = (
            f"We have recorded that our reply does not resolve your complaint {reference}. It"
            " goes back to the team looking into it, who will contact you."
        )
    return page("Thank you for your answer", f'<p class="thanks">{text}</p>', 200)
