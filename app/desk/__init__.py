"""The agent's desk: the websocket that carries offers (with their screen pop) and decisions."""
