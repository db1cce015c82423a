"""The channel word shared by every layer."""

from enum import StrEnum


class Channel(StrEnum):
    voice = "voice"
    email = "email"
    chat = "chat"
    callback = "callback"
