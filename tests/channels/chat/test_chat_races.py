"""Web chat under the orderings a loaded server sees (found by `make bench`'s chat phase): an
agent who takes a chat in the moment between its first line being stored and the customer's
socket hearing of the chat."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.channels.chat.chats import ChatRooms, OpenChat
from tests.channels.chat.conftest import Site, chat_agent

Headers = dict[str, str]
pytestmark = pytest.mark.asyncio


async def test_an_agent_who_takes_the_chat_while_the_socket_reads_it_is_announced(
    app: FastAPI,
    site: Site,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The socket reads the new chat's state (offered), the agent accepts, and only then does
    the read come back: the customer is told the agent joined all the same, and the older
    read does not undo it (the agent's line is delivered, the customer's reading reaches the
    agent)."""
    _, desk = await chat_agent(client, admin, served, "mei")
    customer, _ = await site.customer()
    rooms: ChatRooms = app.state.chats
    read_state = rooms.chat_now
    accepted = asyncio.Event()
    late: list[uuid.UUID] = []

    async def read_before_the_accept(chat_id: uuid.UUID) -> OpenChat | None:
        state = await read_state(chat_id)
        if not late:  # the first line's read: back only once the agent has the chat
            late.append(chat_id)
            await accepted.wait()
        return state

    monkeypatch.setattr(rooms, "chat_now", read_before_the_accept)
    try:
        await customer.send(type="message", client_id="c1", text="Hello, my invoice is wrong")
        offer = await desk.next("offer")
        await desk.send(type="accept", offer_id=offer["offer_id"])
        await desk.next("assignment")
        # Told while the first line's read is still out (the chat's events come as they come).
        assert (await customer.next("agent_joined"))["agent"] == "Mei"
    finally:
        accepted.set()  # else a failure leaves the socket's handler waiting, and the server

    assert (await customer.next("stored"))["chat_id"] == offer["interaction_id"]
    await desk.send(type="reply", interaction_id=offer["interaction_id"], text="Let me see.")
    line = await customer.next("message")
    await customer.send(type="read", message_id=line["message_id"])
    while not (receipt := await desk.next("receipt"))["read"]:
        pass  # the delivered one first
    assert receipt["message_ids"] == [line["message_id"]]
