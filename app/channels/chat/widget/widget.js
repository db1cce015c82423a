// The contact center's chat widget: one websocket to /v1/chat/ws, speaking
// docs/chat-protocol.md. Plain JavaScript, no build step, no library.
//
// A page of one of the site's origins embeds it with an element, this script and its style:
//   <link rel="stylesheet" href="https://CENTER/chat/widget.css">
//   <div id="cc-chat" data-site="SITE ID"></div>
//   <script src="https://CENTER/chat/widget.js" defer></script>
// For a customer logged in to the host site, its server adds data-customer="THEIR ID" and
// data-signature="HEX HMAC-SHA256 OF IT" to the element (docs/chat-protocol.md, hello).
// Every text a person or an agent wrote goes into the page as text (textContent, text nodes),
// never parsed as HTML: an agent's line is not the page's to run.
"use strict";

(function () {
  const HEARTBEAT_MS = 20000; // the server closes a socket silent for 60 s (4000)
  const TYPING_EVERY_MS = 3000; // at most one "typing" a while: the agent needs no more
  const TYPING_IDLE_MS = 4000; // no key this long: the customer stopped typing
  const AGENT_TYPING_MS = 15000; // an agent's "typing" not heard again (their desk gone): over
  const FIRST_RETRY_MS = 1000;
  const LAST_RETRY_MS = 30000;
  // Closes a reconnect cannot mend (docs/chat-protocol.md, "Close codes"): the customer left
  // or the chat is over (1000), the page may not open this site (1008), the widget spoke out of
  // turn (4002), the host site's signature is wrong (4003). Anything else (1013 busy, 4000
  // silence, 1006 the network) is tried again.
  const FINAL = {
    1000: "The chat has ended",
    1008: "This page may not open the chat",
    4002: "The chat widget did not say hello in time",
    4003: "Your sign-in could not be checked",
  };
  const TICKS = { sending: "Sending…", sent: "✓", delivered: "✓✓", read: "✓✓ Read" };
  const RANK = { failed: 0, sending: 1, sent: 2, delivered: 3, read: 4 };

  // The server is where this script came from (the page may be the host site's, elsewhere);
  // its scheme follows the script's, which a https page makes https.
  const script = new URL(document.currentScript.src);
  const socketUrl = (site) =>
    `${script.protocol === "https:" ? "wss:" : "ws:"}//${script.host}/v1/chat/ws` +
    `?site=${encodeURIComponent(site)}`;

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child); // strings become text nodes
    return node;
  }

  function mount(root) {
    const site = root.dataset.site;
    const tokenKey = `cc-chat-visitor:${site}`;
    const ui = {
      status: el("p", { id: "cc-status", role: "status" }, "Connecting…"),
      agent: el("p", { id: "cc-agent", hidden: "" }),
      waiting: el("p", { id: "cc-waiting", hidden: "" }),
      transcript: el("ol", { id: "cc-transcript", "aria-live": "polite" }),
      typing: el("p", { id: "cc-typing", hidden: "" }),
      // 4000: the longest line the server takes (app/channels/chat/protocol.py).
      text: el("textarea", { id: "cc-text", rows: "2", maxlength: "4000", placeholder: "Write a message" }),
      send: el("button", { id: "cc-send", type: "submit" }, "Send"),
      leave: el("button", { id: "cc-leave", type: "button" }, "End chat"),
      closed: el("p", { id: "cc-closed", hidden: "" }),
      hours: el("p", { id: "cc-hours" }),
      email: el("input", {
        id: "cc-email", type: "email", required: "", maxlength: "320", placeholder: "Your email address",
      }),
      note: el("textarea", { id: "cc-note", rows: "4", required: "", placeholder: "Your message" }),
      leaveNote: el("button", { id: "cc-leave-note", type: "submit" }, "Send by email"),
      thanks: el("p", { id: "cc-thanks", hidden: "" }, "Thank you: we will answer you by email."),
    };
    ui.compose = el("form", { id: "cc-compose" }, ui.text, ui.send, ui.leave);
    ui.afterHours = el("form", { id: "cc-after-hours", hidden: "" }, ui.hours, ui.email, ui.note, ui.leaveNote);
    root.replaceChildren(ui.status, ui.agent, ui.waiting, ui.transcript, ui.typing, ui.closed);
    root.append(ui.compose, ui.afterHours, ui.thanks);

    let socket = null;
    let ready = false; // past the welcome: messages may go
    let retries = 0;
    let heartbeat = null;
    let lastTyping = 0;
    let typingIdle = null;
    let agentTypingOver = null;
    let lastRead = null; // the agent's last line we said was read
    let agentName = "The agent";
    const pending = new Map(); // client_id -> {text, line}: sent, not yet `stored`
    const unanswered = []; // client_ids sent on this socket, in order: an error answers the first
    const lines = new Map(); // message_id -> the line shown
    const early = new Map(); // message_id -> a receipt that came before its `stored`

    const show = (node, on) => { node.hidden = !on; };
    const status = (text) => { ui.status.textContent = text; };

    function send(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    }

    function connect() {
      ready = false;
      unanswered.length = 0;
      socket = new WebSocket(socketUrl(site));
      socket.onopen = () => {
        const token = localStorage.getItem(tokenKey);
        send({ type: "hello", visitor_token: token, identity: signedIn(), name: "" });
        heartbeat = setInterval(() => send({ type: "heartbeat" }), HEARTBEAT_MS);
      };
      socket.onmessage = (event) => handle(JSON.parse(event.data));
      socket.onclose = (event) => dropped(event);
    }

    // A host site that signs its logged-in customer puts the id and signature on the element
    // (its server computes them: docs/channels.md); the demo page has none.
    function signedIn() {
      const { customer, signature } = root.dataset;
      return customer && signature ? { customer, signature } : null;
    }

    function dropped(event) {
      clearInterval(heartbeat);
      ready = false;
      if (event.code in FINAL) {
        status(event.reason ? `${FINAL[event.code]}: ${event.reason}` : FINAL[event.code]);
        show(ui.compose, false);
        return;
      }
      // Backoff with jitter, so a restarted server is not met by every widget at once.
      const delay = Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** retries) * (0.5 + Math.random() / 2);
      retries += 1;
      status(`Connection lost; trying again in ${Math.ceil(delay / 1000)} s…`);
      setTimeout(connect, delay);
    }

    function handle(frame) {
      switch (frame.type) {
        case "welcome": return welcome(frame);
        case "stored": return stored(frame);
        case "waiting": return waiting(frame);
        case "agent_joined": return joined(frame.agent);
        case "message": return said(frame);
        case "typing": return agentTyping(frame.active);
        case "receipt": return receipt(frame);
        case "closed": return ended(frame.reason);
        case "left_message": show(ui.afterHours, false); return show(ui.thanks, true);
        case "error": return refused(frame);
      }
    }

    function welcome(frame) {
      localStorage.setItem(tokenKey, frame.visitor_token);
      retries = 0;
      ready = true;
      status("Connected");
      const chat = frame.chat;
      if (chat) {
        // What was said while away: the transcript, drawn anew (lines may have come twice).
        lines.clear();
        ui.transcript.replaceChildren();
        chat.messages.forEach((line) => said(line, false)); // read once, below
        if (chat.agent && chat.state === "assigned") joined(chat.agent);
      } else if (!frame.open) {
        // Closed: what the customer wrote meanwhile goes into the form instead.
        const unsent = [...pending.values()];
        pending.clear();
        unsent.forEach(({ line }) => line.remove());
        return afterHours(frame.next_opening, unsent.map(({ text }) => text).join("\n"));
      }
      // Lines the server never acknowledged go again with their client_id: stored once.
      for (const [clientId, { text, line }] of pending) {
        ui.transcript.append(line); // after the transcript, where they were written
        say(clientId, text);
      }
      readUpToLast();
    }

    function say(clientId, text) {
      unanswered.push(clientId);
      send({ type: "message", client_id: clientId, text });
    }

    function write(event) {
      event.preventDefault();
      const text = ui.text.value.trim();
      if (!text) return;
      ui.text.value = "";
      const clientId = crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random());
      const line = addLine({ sender: "customer", text });
      line.dataset.clientId = clientId;
      tick(line, "sending");
      pending.set(clientId, { text, line });
      stopTyping();
      show(ui.closed, false);
      if (ready) say(clientId, text); // else it goes after the next welcome
    }

    function stored(frame) {
      answered(frame.client_id);
      const mine = pending.get(frame.client_id);
      pending.delete(frame.client_id);
      if (!mine) return;
      if (lines.has(frame.message_id)) return mine.line.remove(); // a resend the transcript had
      mine.line.dataset.messageId = frame.message_id;
      lines.set(frame.message_id, mine.line);
      tick(mine.line, early.get(frame.message_id) || "sent");
      early.delete(frame.message_id);
    }

    function answered(clientId) {
      const at = unanswered.indexOf(clientId);
      if (at >= 0) unanswered.splice(at, 1);
    }

    function refused(frame) {
      if (frame.of !== "message") return status(frame.detail);
      const clientId = unanswered.shift();
      const mine = pending.get(clientId);
      if (!mine) return status(frame.detail);
      if (frame.error === "closed") {
        pending.delete(clientId);
        mine.line.remove();
        return afterHours(null, mine.text);
      }
      if (frame.error === "rate_limited" || frame.error === "try_again") {
        // Kept pending: tried again once the server said it may be, on this socket or the next.
        const wait = (frame.retry_after_seconds || 2) * 1000;
        status(frame.detail);
        setTimeout(() => { if (ready && pending.has(clientId)) say(clientId, mine.text); }, wait);
        return;
      }
      pending.delete(clientId);
      tick(mine.line, "failed", `Not sent: ${frame.detail}`);
    }

    function waiting(frame) {
      const m = Math.max(1, Math.round(frame.estimated_wait_seconds / 60));
      const minutes = frame.estimated_wait_seconds == null ? "" : `, about ${m} minute${m === 1 ? "" : "s"}`;
      ui.waiting.textContent = `You are number ${frame.position} in line${minutes}`;
      show(ui.waiting, true);
      show(ui.agent, false); // waiting anew (transferred): the next agent joins as the first did
    }

    function joined(agent) {
      agentName = agent || agentName;
      ui.agent.textContent = `You are chatting with ${agentName}`;
      show(ui.agent, true);
      show(ui.waiting, false);
    }

    function said(frame, live = true) {
      if (lines.has(frame.message_id)) return; // a line may come live and in a transcript
      const line = addLine(frame);
      line.dataset.messageId = frame.message_id;
      lines.set(frame.message_id, line);
      if (frame.sender === "customer") tick(line, frame.read ? "read" : frame.delivered ? "delivered" : "sent");
      if (frame.sender === "agent" && live) {
        agentTyping(false);
        readUpToLast();
      }
    }

    function addLine({ sender, agent, text }) {
      const who = sender === "customer" ? "You" : sender === "agent" ? agent || agentName : "";
      const line = el("li", { "data-sender": sender },
        el("span", { class: "cc-who" }, who), el("span", { class: "cc-text" }, text));
      if (sender === "customer") line.append(el("span", { class: "cc-ticks" }));
      ui.transcript.append(line);
      ui.transcript.scrollTop = ui.transcript.scrollHeight; // the newest in view, the page left still
      return line;
    }

    // A customer's line only moves on (sending, sent, delivered, read): receipts may cross.
    function tick(line, state, words) {
      const now = line.dataset.state;
      if (state !== "failed" && now && RANK[now] >= RANK[state]) return;
      line.dataset.state = state;
      line.querySelector(".cc-ticks").textContent = words || TICKS[state];
    }

    function receipt(frame) {
      const state = frame.read ? "read" : "delivered";
      const line = lines.get(frame.message_id);
      if (line) tick(line, state);
      else early.set(frame.message_id, state);
    }

    function agentTyping(active) {
      ui.typing.textContent = `${agentName} is typing…`;
      show(ui.typing, active);
      clearTimeout(agentTypingOver);
      if (active) agentTypingOver = setTimeout(() => show(ui.typing, false), AGENT_TYPING_MS);
    }

    function ended(reason) {
      show(ui.waiting, false);
      show(ui.agent, false);
      agentTyping(false);
      ui.closed.textContent = `The chat is over: ${reason}. Write again to start a new one.`;
      show(ui.closed, true);
    }

    // The agent sees their lines read once they are on a screen someone looks at.
    function readUpToLast() {
      if (document.visibilityState !== "visible" || !ready) return;
      const agents = ui.transcript.querySelectorAll('li[data-sender="agent"][data-message-id]');
      const last = agents[agents.length - 1];
      if (!last || last.dataset.messageId === lastRead) return;
      lastRead = last.dataset.messageId;
      send({ type: "read", message_id: lastRead });
    }

    function typed() {
      const now = Date.now();
      if (now - lastTyping > TYPING_EVERY_MS) {
        lastTyping = now;
        send({ type: "typing", active: true });
      }
      clearTimeout(typingIdle);
      typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
    }

    function stopTyping() {
      clearTimeout(typingIdle);
      if (!lastTyping) return;
      lastTyping = 0;
      send({ type: "typing", active: false });
    }

    function afterHours(nextOpening, text) {
      ui.hours.textContent = nextOpening
        ? `We are closed now; we open again on ${new Date(nextOpening).toLocaleString()}. Leave us a message:`
        : "We are closed now. Leave us a message:";
      if (text) ui.note.value = text;
      show(ui.compose, false);
      show(ui.afterHours, true);
    }

    function leaveNote(event) {
      event.preventDefault();
      send({ type: "leave_message", email: ui.email.value.trim(), text: ui.note.value.trim() });
    }

    ui.compose.addEventListener("submit", write);
    ui.text.addEventListener("input", typed);
    // Enter sends, Shift+Enter starts a new line, as in every chat.
    ui.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) write(event);
    });
    ui.leave.addEventListener("click", () => send({ type: "leave" }));
    ui.afterHours.addEventListener("submit", leaveNote);
    document.addEventListener("visibilitychange", readUpToLast);
    connect();
  }

  const root = document.getElementById("cc-chat");
  if (root) mount(root);
})();
