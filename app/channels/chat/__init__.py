"""Web chat: the customer's socket, chat sites, and a chat's life (docs/chat-protocol.md)."""
