// The supervisors' wallboard: a tile per queue and the escalated or overdue complaints, fed by
// the supervisor socket (/v1/supervisor/ws; its frames are listed in wallboard.html). Plain
// JavaScript, no build step, no library, nothing fetched from anywhere but this server.
//
// The login token lives in this tab's sessionStorage only (gone with the tab, never in a URL):
// the socket is opened with a one-use ticket asked for with it each time. Every text the server
// sends (a queue's name, a complaint's reference) goes into the page as text, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "cc-wallboard-token";
  const FIRST_RETRY_MS = 1000;
  const LAST_RETRY_MS = 30000;
  const AMBER_POINTS = 5; // under the target by at most this many points: amber, not red
  const SLOTS_A_DAY = 96; // the chart's 15-minute intervals
  const CHART_HEIGHT = 40;
  const SUPERVISING = new Set(["supervisor", "admin"]);
  const AGENT_STATES = [
    ["available", "Available"],
    ["busy", "Busy"],
    ["wrap_up", "Wrap-up"],
    ["away", "Away"],
    ["offline", "Offline"],
  ];
  // Closes a reconnect cannot mend (app/core/socket_session.py's CloseCode): another socket
  // took over (4001), the page spoke out of turn (4002). Anything else (1008 a ticket refused,
  // 1011, 1012 a restart, 1013 busy, 4000 silence, 1006 the network) is tried again with a
  // new ticket: a token gone by then sends the page back to its login.
  const FINAL = {
    4001: "Another wallboard took over this connection",
    4002: "The wallboard did not say hello in time: reload the page",
  };
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("wb-status"),
    signOut: $("wb-sign-out"),
    login: $("wb-login"),
    username: $("wb-username"),
    password: $("wb-password"),
    signIn: $("wb-sign-in"),
    problem: $("wb-login-problem"),
    board: $("wb-board"),
    queues: $("wb-queues"),
    complaints: $("wb-complaints"),
    noComplaints: $("wb-no-complaints"),
  };

  // What the socket said, kept to redraw from: a queue's view with when it arrived (its
  // longest wait keeps growing on screen between frames).
  const seen = { queues: new Map(), complaints: new Map(), lastEventId: null };
  let socket = null;
  let retries = 0;
  let retryTimer = null;
  let heartbeat = null;

  // Relative to the page, so the board works behind a proxy that serves it under a path.
  const here = (path) => new URL(path, document.baseURI);
  function socketUrl(ticket) {
    const url = here("v1/supervisor/ws");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket);
    return url.href;
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child); // strings become text nodes
    return node;
  }

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child);
    return node;
  }

  function show(node, shown) {
    node.hidden = !shown;
  }

  function say(text) {
    ui.status.textContent = text;
  }

  // --- Signing in and out -----------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function askToSignIn(problem) {
    show(ui.login, true);
    show(ui.board, false);
    show(ui.signOut, false);
    ui.problem.textContent = problem || "";
    show(ui.problem, Boolean(problem));
    say("Not signed in");
    ui.username.focus();
  }

  async function signIn(event) {
    event.preventDefault();
    show(ui.problem, false);
    ui.signIn.disabled = true;
    try {
      const problem = await logIn(ui.username.value.trim(), ui.password.value);
      if (problem) askToSignIn(problem);
      else start();
    } finally {
      ui.signIn.disabled = false;
      ui.password.value = "";
    }
  }

  // Logs in and keeps the token; returns why not, as a person reads it, when it cannot.
  async function logIn(username, password) {
    let response;
    try {
      response = await fetch(here("v1/auth/login"), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
    } catch (error) {
      return "The server does not answer: check the connection and try again.";
    }
    if (response.status === 401) return "Wrong username or password.";
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      return `Too many failed sign-ins: try again in ${wait || "a few"} seconds.`;
    }
    if (response.status === 422) return "Enter a username and a password.";
    if (!response.ok) return `The server could not sign you in (status ${response.status}): try again.`;
    const signedIn = await response.json();
    if (!SUPERVISING.has(signedIn.user.role)) {
      // The token is of no use here: give it back rather than leave it live.
      await logOut(signedIn.access_token);
      return (
        `The wallboard is for supervisors and admins: ${signedIn.user.username} is ` +
        `${signedIn.user.role === "agent" ? "an agent" : `a ${signedIn.user.role}`}.`
      );
    }
    sessionStorage.setItem(TOKEN_KEY, signedIn.access_token);
    return null;
  }

  async function logOut(secret) {
    try {
      await fetch(here("v1/auth/logout"), {
        method: "POST",
        headers: { Authorization: `Bearer ${secret}` },
      });
    } catch (error) {
      // Signed out on this page either way; the token expires by itself.
    }
  }

  async function signOut() {
    const secret = token();
    stop();
    if (secret) await logOut(secret);
    askToSignIn(null);
  }

  function stop() {
    sessionStorage.removeItem(TOKEN_KEY);
    const closing = socket;
    socket = null; // its close is ours: nothing to reconnect
    if (closing) closing.close(1000, "signed out");
    clearTimeout(retryTimer);
    clearInterval(heartbeat);
    seen.queues.clear();
    seen.complaints.clear();
    seen.lastEventId = null;
    drawQueues();
    drawComplaints();
  }

  // --- The socket -------------------------------------------------------------------------

  function start() {
    show(ui.login, false);
    show(ui.board, true);
    show(ui.signOut, true);
    connect();
  }

  async function connect() {
    retryTimer = null;
    say("Connecting…");
    let ticket;
    try {
      const response = await fetch(here("v1/supervisor/tickets"), {
        method: "POST",
        headers: { Authorization: `Bearer ${token()}` },
      });
      if (response.status === 401) return ended("Your sign-in has ended: sign in again.");
      if (response.status === 403) {
        return ended("The wallboard is for supervisors and admins: this user may not open it.");
      }
      if (!response.ok) throw new Error(`status ${response.status}`);
      ticket = (await response.json()).ticket;
    } catch (error) {
      return retryLater("The server does not answer");
    }
    if (!token()) return; // signed out while the ticket came
    const opened = new WebSocket(socketUrl(ticket));
    socket = opened;
    opened.onopen = () => {
      // From the last event this page saw: the server sends what changed since, or a snapshot.
      opened.send(JSON.stringify({ type: "hello", last_event_id: seen.lastEventId }));
    };
    opened.onmessage = (message) => {
      if (opened === socket) received(JSON.parse(message.data));
    };
    opened.onclose = (event) => {
      if (opened === socket) dropped(event);
    };
  }

  function ended(problem) {
    stop();
    askToSignIn(problem);
  }

  function dropped(event) {
    socket = null;
    clearInterval(heartbeat);
    const final = FINAL[event.code];
    if (final) {
      say(`${final} (${event.code})`);
      return;
    }
    retryLater(`Connection lost (${event.code}${event.reason ? `: ${event.reason}` : ""})`);
  }

  function retryLater(why) {
    const delay = Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** retries) * (0.5 + Math.random() / 2);
    retries += 1;
    say(`${why}: reconnecting in ${Math.ceil(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  }

  function received(frame) {
    const eventId = frame.event_id;
    if (typeof eventId === "number" && (seen.lastEventId === null || eventId > seen.lastEventId)) {
      seen.lastEventId = eventId;
    }
    const now = Date.now();
    switch (frame.type) {
      case "snapshot":
        seen.queues.clear();
        for (const queue of frame.queues) seen.queues.set(queue.queue_id, { view: queue, at: now });
        seen.complaints.clear();
        for (const complaint of frame.complaints) keepComplaint(complaint);
        drawQueues();
        drawComplaints();
        break;
      case "queue":
        seen.queues.set(frame.queue.queue_id, { view: frame.queue, at: now });
        drawQueue(frame.queue.queue_id);
        break;
      case "complaint":
        keepComplaint(frame.complaint);
        drawComplaints();
        break;
      case "ready":
        retries = 0;
        say("Live");
        clearInterval(heartbeat);
        if (frame.heartbeat_seconds > 0) {
          heartbeat = setInterval(() => {
            if (socket && socket.readyState === WebSocket.OPEN) socket.send('{"type":"heartbeat"}');
          }, frame.heartbeat_seconds * 1000);
        }
        break;
      default:
        break; // an agent's frame, or one this page does not know yet: nothing on the board
    }
  }

  function keepComplaint(complaint) {
    if (complaint.overdue || complaint.escalated) seen.complaints.set(complaint.complaint_id, complaint);
    else seen.complaints.delete(complaint.complaint_id);
  }

  // --- Drawing ----------------------------------------------------------------------------

  // Green at or over the target, amber under it by at most AMBER_POINTS, red further under;
  // "none" when the period answered and abandoned nothing yet (no service level to judge).
  function level(serviceLevel, targetPercent) {
    if (serviceLevel === null || serviceLevel === undefined) return "none";
    const percent = serviceLevel * 100 + 1e-9; // 0.57 * 100 is 56.99999999999999
    if (percent >= targetPercent) return "green";
    if (percent >= targetPercent - AMBER_POINTS) return "amber";
    return "red";
  }

  // Rounded down, so a tile never shows the target's number while under it.
  function percent(serviceLevel) {
    if (serviceLevel === null || serviceLevel === undefined) return "–";
    return `${Math.floor(serviceLevel * 100 + 1e-9)}%`;
  }

  function duration(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    const s = String(whole % 60).padStart(2, "0");
    const m = Math.floor(whole / 60) % 60;
    const h = Math.floor(whole / 3600);
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function longestWait(kept) {
    const waited = kept.view.longest_wait_s;
    if (waited === null || waited === undefined || kept.view.waiting.total === 0) return "–";
    return duration(waited + (Date.now() - kept.at) / 1000);
  }

  // The time of day in the queue's zone (the browser's own, should it not know that zone);
  // nothing for a time it cannot read, rather than no board at all.
  function clock(iso, timeZone) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return "";
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      return new Intl.DateTimeFormat(undefined, { ...options, timeZone }).format(moment);
    } catch (error) {
      return new Intl.DateTimeFormat(undefined, options).format(moment);
    }
  }

  function tile(kept) {
    const queue = kept.view;
    const channels = Object.entries(queue.waiting.by_channel || {})
      .filter(([, count]) => count > 0)
      .map(([channel, count]) => el("li", { "data-channel": channel }, `${channel} ${count}`));
    const agents = AGENT_STATES.map(([state, label]) =>
      el("li", { "data-state": state }, `${label} `, el("b", {}, String(queue.agents[state] || 0))),
    );
    return el(
      "article",
      { class: "wb-queue", "data-queue-id": queue.queue_id },
      el("h2", { class: "wb-name" }, queue.name),
      el("p", { class: "wb-target" }, `Target ${queue.sl_target_percent}% in ${queue.sl_target_seconds} s`),
      el(
        "div",
        { class: "wb-waiting" },
        el("span", { class: "wb-waiting-total" }, String(queue.waiting.total)),
        el("span", { class: "wb-label" }, " waiting"),
      ),
      el("ul", { class: "wb-channels" }, ...channels),
      el(
        "p",
        { class: "wb-longest" },
        el("span", { class: "wb-label" }, "Longest wait "),
        el("span", { class: "wb-longest-wait" }, longestWait(kept)),
      ),
      el(
        "div",
        { class: "wb-levels" },
        serviceLevel("wb-sl-today", "Today", queue.today, queue.sl_target_percent),
        serviceLevel("wb-sl-30", "Last 30 min", queue.last_30_min, queue.sl_target_percent),
      ),
      el("ul", { class: "wb-agents" }, ...agents),
      chart(queue),
    );
  }

  function serviceLevel(name, label, period, target) {
    const value = period ? period.service_level : null;
    return el(
      "div",
      { class: `wb-sl ${name}`, "data-level": level(value, target) },
      el("span", { class: "wb-label" }, label),
      el("span", { class: "wb-sl-value" }, percent(value)),
    );
  }

  // The day's service level by 15 minutes, as bars from midnight in the queue's zone (the
  // intervals come in order from the day's first), with the target as a dashed line.
  function chart(queue) {
    const intervals = queue.by_interval || [];
    const slots = Math.max(SLOTS_A_DAY, intervals.length); // a day with a clock change is longer
    const target = CHART_HEIGHT - (queue.sl_target_percent / 100) * CHART_HEIGHT;
    const bars = [];
    intervals.forEach((interval, slot) => {
      if (interval.service_level === null || interval.service_level === undefined) return;
      const height = Math.max(0.5, interval.service_level * CHART_HEIGHT);
      const title = `${clock(interval.start, queue.time_zone)}: ${percent(interval.service_level)}` +
        ` of ${interval.offered} offered`;
      bars.push(
        svg(
          "rect",
          {
            class: "wb-bar",
            "data-level": level(interval.service_level, queue.sl_target_percent),
            x: slot + 0.1,
            y: CHART_HEIGHT - height,
            width: 0.8,
            height,
          },
          svg("title", {}, title),
        ),
      );
    });
    return svg(
      "svg",
      {
        class: "wb-chart",
        viewBox: `0 0 ${slots} ${CHART_HEIGHT}`,
        preserveAspectRatio: "none",
        role: "img",
        "aria-label": "Service level by 15 minutes today",
      },
      svg("rect", { class: "wb-chart-ground", x: 0, y: 0, width: slots, height: CHART_HEIGHT }),
      ...bars,
      svg("line", { class: "wb-chart-target", x1: 0, x2: slots, y1: target, y2: target }),
    );
  }

  function byName(a, b) {
    return a.view.name.localeCompare(b.view.name);
  }

  function drawQueues() {
    const kept = [...seen.queues.values()].sort(byName);
    if (kept.length === 0) {
      ui.queues.replaceChildren(el("p", { id: "wb-no-queues" }, seen.lastEventId === null ? "" : "No queues"));
      return;
    }
    ui.queues.replaceChildren(...kept.map(tile));
  }

  // One queue's tile replaced where it stands (a new queue: every tile, in name order).
  function drawQueue(queueId) {
    const kept = seen.queues.get(queueId);
    const standing = [...ui.queues.querySelectorAll(".wb-queue")].find((node) => node.dataset.queueId === queueId);
    if (standing && standing.querySelector(".wb-name").textContent === kept.view.name) {
      standing.replaceWith(tile(kept));
    } else {
      drawQueues();
    }
  }

  function drawComplaints() {
    const listed = [...seen.complaints.values()].sort(
      (a, b) => Number(b.overdue) - Number(a.overdue) || String(a.due_at).localeCompare(String(b.due_at)),
    );
    ui.complaints.replaceChildren(...listed.map(complaintLine));
    show(ui.noComplaints, listed.length === 0);
  }

  function complaintLine(complaint) {
    const marks = [];
    if (complaint.overdue) marks.push(el("span", { class: "wb-overdue" }, "overdue"));
    if (complaint.escalated) marks.push(el("span", { class: "wb-escalated" }, "escalated"));
    const dueAt = new Date(complaint.due_at);
    const due = complaint.due_at && !Number.isNaN(dueAt.getTime())
      ? `due ${dueAt.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })}`
      : "";
    return el(
      "li",
      { "data-complaint-id": complaint.complaint_id },
      el("span", { class: "wb-reference" }, complaint.reference),
      el("span", { class: "wb-step" }, complaint.step.replaceAll("_", " ")),
      el("span", { class: "wb-due" }, due),
      ...marks,
    );
  }

  // The longest waits count up between frames, each second, from when the frame arrived (the
  // browser's clock need not agree with the server's): the board reads its queues again every
  // few seconds, so a view in a snapshot is at most that old, and the next frame sets it right.
  function tick() {
    for (const node of ui.queues.querySelectorAll(".wb-queue")) {
      const kept = seen.queues.get(node.dataset.queueId);
      if (kept) node.querySelector(".wb-longest-wait").textContent = longestWait(kept);
    }
  }

  ui.login.addEventListener("submit", signIn);
  ui.signOut.addEventListener("click", signOut);
  setInterval(tick, 1000);
  if (token()) start();
  else askToSignIn(null);
})();
