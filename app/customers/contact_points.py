"""Normalising contact points so that one number or address always finds one customer. Pure."""

from __future__ import annotations

import re

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


# One `@`; a dot-atom local part (no spaces, control characters or specials, no empty atom); a
# domain of two or more dot-separated labels of letters, digits and inner hyphens.
_ATOM = r"[^\s\x00-\x1f\x7f@\"(),.:;<>\[\]\\]+"
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")


def normalize_email(raw: str) -> str:
    """Addresses compare case-insensitively; they are stored in lower case."""
    address = raw.strip().lower()
    if _EMAIL.fullmatch(address) is None:
        raise InvalidContactPoint(f"{raw!r} is not an email address")
    return address


def normalize_chat_id(raw: str) -> str:
    identity = raw.strip()
    if not identity or len(identity) > 320:
        raise InvalidContactPoint("a chat identity is 1 to 320 characters")
    return identity


_ACCOUNT_SEPARATORS = re.compile(r"[\s-]+")
_ACCOUNT = re.compile(r"[0-9]{4,32}")


def normalize_account(raw: str) -> str:
    """An account number is its digits, as a caller keys them: `1234 5674` is `12345674`."""
    digits = _ACCOUNT_SEPARATORS.sub("", raw)
    if _ACCOUNT.fullmatch(digits) is None:
        raise InvalidContactPoint(f"{raw!r} is not an account number (4 to 32 digits)")
    return digits


def normalize(kind: ContactKind, raw: str, default_region: str) -> str:
    if kind is ContactKind.phone:
        return normalize_phone(raw, default_region)
    if kind is ContactKind.email:
        return normalize_email(raw)
    if kind is ContactKind.account:
        return normalize_account(raw)
    return normalize_chat_id(raw)
