"""The pure normalisers: one number or address, however written, is one contact point."""

from __future__ import annotations

import string

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.customers.contact_points import (
    InvalidContactPoint,
    normalize,
    normalize_chat_id,
    normalize_email,
    normalize_phone,
)
from app.customers.models import ContactKind

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Regions with different numbering habits: trunk prefixes (0 in DE, GB, FR; 8 in RU), a leading
# zero kept in E.164 (IT), the shared +1 plan (US, CA), and short national numbers (SG).
REGIONS = ["CN", "US", "CA", "GB", "DE", "FR", "IT", "RU", "JP", "IN", "BR", "AU", "SG", "HK"]
PHONE_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
]
NUMBER_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


# --- phone numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "13800138000",
        "+86 138 0013 8000",
        "(+86) 138-0013-8000",
        "+8613800138000",
        "0086 138 0013 8000",
        " 138 0013 8000 ",
    ],
)
def test_a_chinese_mobile_written_any_way_is_one_e164_number(written: str) -> None:
    assert normalize_phone(written, "CN") == "+8613800138000"


@pytest.mark.parametrize("written", ["(201) 555-0123", "201-555-0123", "+1 201 555 0123"])
def test_a_us_number_read_with_region_us(written: str) -> None:
    assert normalize_phone(written, "US") == "+12015550123"


def test_the_default_region_only_matters_without_a_country_code() -> None:
    assert normalize_phone("+1 201 555 0123", "CN") == "+12015550123"
    assert normalize_phone("+86 138 0013 8000", "US") == "+8613800138000"
    # A Chinese national number is not a valid US number.
    with pytest.raises(InvalidContactPoint):
        normalize_phone("138 0013 8000", "US")


@pytest.mark.parametrize(
    "written",
    [
        "12345",  # too short to be a number anywhere
        "+86 138",  # a country code and a stub
        "+86 000 0000 0000",  # the right length but no such range
        "+999 1234 5678",  # no such country code
        "1" * 30,  # far too long
    ],
)
def test_numbers_that_do_not_exist_are_refused(written: str) -> None:
    with pytest.raises(InvalidContactPoint, match=r"not a valid phone number|not a phone number"):
        normalize_phone(written, "CN")


@pytest.mark.parametrize("written", ["", "   ", "hello", "call me", "@@@", "+"])
def test_text_that_is_no_number_is_refused(written: str) -> None:
    with pytest.raises(InvalidContactPoint):
        normalize_phone(written, "CN")


def test_a_national_number_with_an_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidContactPoint):
        normalize_phone("13800138000", "ZZ")


def test_the_refusal_names_the_number_and_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'12345'"):
        normalize_phone("12345", "CN")


def _example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    examples = []
    for region in REGIONS:
        for number_type in NUMBER_TYPES:
            number = phonenumbers.example_number_for_type(region, number_type)
            if number is not None:
                examples.append((region, number))
    return examples


EXAMPLES = _example_numbers()


def test_every_region_under_test_has_example_numbers() -> None:
    assert {region for region, _ in EXAMPLES} == set(REGIONS)


@PROPERTY
@given(
    example=st.sampled_from(EXAMPLES),
    written_as=st.sampled_from(PHONE_FORMATS),
    reread_in=st.sampled_from(REGIONS),
)
def test_example_numbers_in_any_format_normalise_to_e164_and_stay_there(
    example: tuple[str, phonenumbers.PhoneNumber],
    written_as: int,
    reread_in: str,
) -> None:
    region, number = example
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    written = phonenumbers.format_number(number, written_as)
    normalised = normalize_phone(written, region)
    assert normalised == e164
    assert normalize_phone(normalised, region) == normalised
    # E.164 carries its country code, so the reader's default region no longer matters.
    assert normalize_phone(normalised, reread_in) == normalised


@PROPERTY
@given(
    example=st.sampled_from(EXAMPLES),
    tail=st.text(alphabet=string.digits, min_size=4, max_size=4),
    reread_in=st.sampled_from(REGIONS),
)
def test_normalising_is_idempotent_for_generated_numbers(
    example: tuple[str, phonenumbers.PhoneNumber], tail: str, reread_in: str
) -> None:
    region, number = example
    national = phonenumbers.national_significant_number(number)
    digits = national[: -len(tail)] + tail
    written = f"+{number.country_code}{digits}"
    try:
        normalised = normalize_phone(written, region)
    except InvalidContactPoint:
        assume(False)
        return
    assert normalised.startswith("+")
    assert normalised[1:].isdigit()
    assert normalize_phone(normalised, region) == normalised
    assert normalize_phone(normalised, reread_in) == normalised


@PROPERTY
@given(text=st.text(alphabet=string.ascii_letters + " .-()", max_size=20))
def test_text_without_digits_is_never_a_number(text: str) -> None:
    with pytest.raises(InvalidContactPoint):
        normalize_phone(text, "CN")


# --- email addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("Li.Wei@Example.COM", "li.wei@example.com"),
        ("  grace@example.com  ", "grace@example.com"),
        ("\tSAM.DOE@EXAMPLE.CO.UK\n", "sam.doe@example.co.uk"),
        ("x+tag@mail-1.example.org", "x+tag@mail-1.example.org"),
    ],
)
def test_email_addresses_are_trimmed_and_lower_cased(written: str, stored: str) -> None:
    assert normalize_email(written) == stored


@pytest.mark.parametrize(
    "written",
    [
        "",
        "li.wei",
        "li.wei@",
        "@example.com",
        "li.wei@example",  # no dot in the domain
        "li wei@example.com",
        "li.wei@exa mple.com",
        "li@wei@example.com",  # two @
        "li.wei@.example.com",
        "li.wei@example.com.",
        "li.wei@example..com",
        ".li@example.com",
        "li.@example.com",
        "li..wei@example.com",
        "li\twei@example.com",
        "li.wei@example.com\nBcc: all@example.com",  # a header injection
        "li.wei@exam_ple.com",
        "li.wei@-example.com",
        "<li.wei@example.com>",
    ],
)
def test_things_that_are_not_email_addresses_are_refused(written: str) -> None:
    with pytest.raises(InvalidContactPoint, match="not an email address"):
        normalize_email(written)


ATOM = st.text(alphabet=string.ascii_letters + string.digits + "_+-", min_size=1, max_size=12)
LABEL = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10)
TLD = st.text(alphabet=string.ascii_letters, min_size=2, max_size=6)


@st.composite
def email_addresses(draw: st.DrawFn) -> str:
    local = ".".join(draw(st.lists(ATOM, min_size=1, max_size=3)))
    domain = ".".join([*draw(st.lists(LABEL, min_size=1, max_size=3)), draw(TLD)])
    return f"{local}@{domain}"


@PROPERTY
@given(address=email_addresses(), pad=st.sampled_from(["", " ", "\t", "  \n"]))
def test_email_normalisation_is_idempotent(address: str, pad: str) -> None:
    once = normalize_email(pad + address + pad)
    assert normalize_email(once) == once
    assert once == once.strip().lower()


@PROPERTY
@given(address=email_addresses(), flips=st.lists(st.booleans(), min_size=60, max_size=60))
def test_email_normalisation_ignores_case(address: str, flips: list[bool]) -> None:
    mixed = "".join(
        c.upper() if flips[i % len(flips)] else c.lower() for i, c in enumerate(address)
    )
    assert normalize_email(mixed) == normalize_email(address.lower())
    assert normalize_email(address.upper()) == normalize_email(address.lower())


@PROPERTY
@given(text=st.text(alphabet=string.ascii_letters + string.digits + ". ", max_size=30))
def test_text_without_an_at_sign_is_never_an_email_address(text: str) -> None:
    with pytest.raises(InvalidContactPoint):
        normalize_email(text)


# --- chat identities and the dispatcher ----------------------------------------------------------


def test_chat_identities_are_trimmed_but_keep_their_case() -> None:
    assert normalize_chat_id("  Visitor-ABC123 ") == "Visitor-ABC123"


@pytest.mark.parametrize("written", ["", "   ", "x" * 321])
def test_empty_or_overlong_chat_identities_are_refused(written: str) -> None:
    with pytest.raises(InvalidContactPoint):
        normalize_chat_id(written)


def test_normalize_dispatches_on_the_kind() -> None:
    assert normalize(ContactKind.phone, "13800138000", "CN") == "+8613800138000"
    assert normalize(ContactKind.email, "A@B.CN", "CN") == "a@b.cn"
    assert normalize(ContactKind.chat, " wx:LiWei ", "CN") == "wx:LiWei"
    # The region is for phone numbers only.
    assert normalize(ContactKind.email, "A@B.CN", "ZZ") == "a@b.cn"
