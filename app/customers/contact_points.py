"""Normalising contact points so that one number or address always finds one customer. Pure."""

from __future__ import annotations

import phonenumbers

from app.customers.models import ContactKind


class InvalidContactPoint(ValueError):
    pass


def normalize_phone(raw: str, default_region: str) -> str:
    """E.164 for any way a person writes a number: `13800138000` and `+86 138 0013 8000` agree."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidContactPoint(f"{raw!r} is not a phone number ({error})") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidContactPoint(
            f"{raw!r} is not a valid phone number (read with default region {default_region})"
        )
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(raw: str) -> str:
    """Addresses compare case-insensitively; they are stored in lower case."""
    address = raw.strip().lower()
    local, at, domain = address.partition("@")
    if not at or not local or "." not in domain or " " in address:
        raise InvalidContactPoint(f"{raw!r} is not an email address")
    return address


def normalize_chat_id(raw: str) -> str:
    identity = raw.strip()
    if not identity or len(identity) > 320:
        raise InvalidContactPoint("a chat identity is 1 to 320 characters")
    return identity


def normalize(kind: ContactKind, raw: str, default_region: str) -> str:
    if kind is ContactKind.phone:
        return normalize_phone(raw, default_region)
    if kind is ContactKind.email:
        return normalize_email(raw)
    return normalize_chat_id(raw)
