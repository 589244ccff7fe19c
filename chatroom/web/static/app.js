// chatroom's web page: one WebSocket, JSON messages (see chatroom/web/README-notes.md).
// Plain JavaScript, no framework, no build step. Everything a person typed is put on the
// page with textContent, never as HTML.
"use strict";

(function () {
  const MAX_LINES = 1000;          // messages kept on the page; older ones are removed
  const BACKOFF_FIRST = 1000;      // ms before the first reconnect attempt
  const BACKOFF_MAX = 30000;       // ms between attempts, at most
  const NO_RECONNECT = new Set([1000, 1008]);  // goodbye (/quit), timeouts

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), me: $("me"), reconnect: $("reconnect"), banner: $("banner"),
    messages: $("messages"), composer: $("composer"), text: $("text"), send: $("send"),
    textError: $("text-error"), members: $("members"), peopleCount: $("people-count"),
    people: $("people"), peopleToggle: $("people-toggle"),
    rooms: $("rooms"), roomForm: $("room-form"), roomName: $("room-name"),
    roomTitle: $("room-title"), roomTopic: $("room-topic"), peopleTitle: $("people-title"),
    join: $("join"), joinForm: $("join-form"), joinTitle: $("join-title"),
    joinNote: $("join-note"), nick: $("nick"), nickError: $("nick-error"),
    joinButton: $("join-button"), passwordField: $("password-field"), password: $("password"),
  };

  const state = {
    ws: null,
    phase: "idle",      // idle | connecting | choosing | password | joined | left
    me: null,           // our nickname once joined
    wanted: null,       // the nickname to (re)join with
    maxText: 0,         // bytes per message, from the welcome
    attempt: 0,         // reconnect attempts since the last welcome
    retryTimer: null,
    countdown: null,
    rooms: new Map(),   // caseless room key -> {name, list, members, unread, topic}
    current: null,      // the key of the room shown (and talked in)
    seen: -Infinity,    // server time of the newest room event or welcome the page got
    listAfterWelcome: false,
    lastError: null,
    everJoined: false,
    sent: [], sentAt: -1,  // lines typed, for arrow-up recall
  };

  const encoder = new TextEncoder();
  const key = (nick) => nick.normalize("NFC").toLocaleLowerCase();
  const roomKey = (name) => key(name.startsWith("#") ? name : "#" + name);

  // The room the URL names (#dev), or "" when it names none (or cannot be read).
  function linkedRoom() {
    let hash;
    try {
      hash = decodeURIComponent(window.location.hash);
    } catch (e) {
      return "";  // a bad percent escape: no room
    }
    return /^#[^#\s]+$/.test(hash) ? hash : "";
  }

  // -- rooms: one message list each; the shown one has the id "messages" ---------------

  function room(name) {
    const k = roomKey(name);
    let r = state.rooms.get(k);
    if (!r) {
      const list = document.createElement("ol");
      list.className = "messages";
      r = { name, list, members: new Map(), roles: new Map(), unread: 0, topic: "" };
      state.rooms.set(k, r);
      drawRooms();
    }
    return r;
  }

  function currentRoom() {
    return state.current !== null ? state.rooms.get(state.current) || null : null;
  }

  // The list lines go to: a room's, or the current one's (replies, private lines).
  function listFor(m) {
    if (m && typeof m.room === "string" && m.room) return room(m.room).list;
    const r = currentRoom();
    return r ? r.list : ui.messages;
  }

  function show(name) {
    const r = room(name);
    const shown = ui.messages;
    if (shown !== r.list) {
      shown.removeAttribute("id");
      shown.replaceWith(r.list);
      r.list.id = "messages";
      ui.messages = r.list;
    }
    state.current = roomKey(name);
    r.unread = 0;
    ui.roomTitle.textContent = r.name;
    ui.roomTopic.textContent = r.topic;
    ui.peopleTitle.textContent = `In ${r.name}`;
    const wanted = "#" + r.name.slice(1);
    if (linkedRoom() !== wanted) window.history.replaceState(null, "", wanted);
    drawRooms();
    drawMembers();
    r.list.scrollTop = r.list.scrollHeight;
  }

  function forget(name) {
    const k = roomKey(name);
    const r = state.rooms.get(k);
    if (!r) return;
    state.rooms.delete(k);
    if (state.current === k) state.current = null;
    drawRooms();
  }

  function drawRooms() {
    const items = [...state.rooms.entries()].map(([k, r]) => {
      const item = document.createElement("li");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "room" + (k === state.current ? " current" : "");
      open.textContent = r.name;
      open.addEventListener("click", () => switchTo(r.name));
      item.appendChild(open);
      if (r.unread > 0 && k !== state.current) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(r.unread);
        badge.title = `${r.unread} unread`;
        open.appendChild(badge);
      }
      const part = document.createElement("button");
      part.type = "button";
      part.className = "part";
      part.textContent = "×";
      part.title = `Leave ${r.name}`;
      part.setAttribute("aria-label", `Leave ${r.name}`);
      part.addEventListener("click", () => sendJson({ type: "say", text: `/part ${r.name}` }));
      item.appendChild(part);
      return item;
    });
    ui.rooms.replaceChildren(...items);
  }

  // Talk in a room: the server makes it current (and joins it if need be).
  function switchTo(name) {
    const k = roomKey(name);
    if (state.rooms.has(k)) show(state.rooms.get(k).name);
    if (state.phase === "joined") sendJson({ type: "say", text: `/join ${name}` });
  }

  // -- the connection ------------------------------------------------------------

  function socketUrl() {
    const url = new URL("ws", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  function connect() {
    clearRetry();
    if (state.ws) return;
    setStatus("connecting", "connecting…");
    state.phase = "connecting";
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect("cannot connect");
      return;
    }
    state.ws = ws;
    ws.onmessage = (event) => {
      if (ws !== state.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;  // not ours; the server only sends JSON
      }
      if (message && typeof message.type === "string") handle(message);
    };
    ws.onclose = (event) => {
      if (ws !== state.ws) return;
      state.ws = null;
      closed(event.code, event.reason);
    };
  }

  function sendJson(object) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(object));
      return true;
    }
    return false;
  }

  function closed(code, reason) {
    const was = state.phase;
    setComposer(false);
    if (was === "joined") {
      system(code === 1001 ? "the server is restarting" : "connection lost", "warn");
    }
    if (NO_RECONNECT.has(code) || was === "left") {
      state.phase = "left";
      setStatus("offline", "not connected");
      const why = state.lastError || (code === 1000 ? "You left the room." : reason);
      showJoin(was === "joined" || state.everJoined ? "Join again" : "Join the chat", why || "");
      return;
    }
    if (state.wanted === null) {  // nobody asked to join yet: wait for the form
      state.phase = "idle";
      setStatus("offline", "not connected");
      return;
    }
    scheduleReconnect(code === 1013 && reason ? reason : "disconnected");
  }

  function scheduleReconnect(why) {
    state.phase = "idle";
    const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** state.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    state.attempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setStatus("reconnecting", `${why} — reconnecting in ${seconds} s`);
    };
    tick();
    ui.reconnect.hidden = false;
    ui.joinButton.disabled = false;
    state.countdown = window.setInterval(tick, 1000);
    state.retryTimer = window.setTimeout(connect, delay);
  }

  function clearRetry() {
    if (state.retryTimer !== null) window.clearTimeout(state.retryTimer);
    if (state.countdown !== null) window.clearInterval(state.countdown);
    state.retryTimer = state.countdown = null;
    ui.reconnect.hidden = true;
  }

  // -- what the server says ------------------------------------------------------------

  function handle(m) {
    target = null;
    switch (m.type) {
      case "prompt":
        state.phase = "choosing";
        state.lastError = null;
        setStatus("online", "connected");
        if (state.wanted !== null) {
          sendJson({ type: "nick", nick: state.wanted });
        } else {
          showJoin(null, null);
        }
        break;
      case "password":  // the nickname is registered: its password, please
        state.phase = "password";
        showJoin(null, m.text);
        ui.nick.value = m.nick;
        ui.nick.disabled = true;
        ui.passwordField.hidden = false;
        ui.password.value = "";
        ui.password.focus();
        break;
      case "welcome":
        joined(m);
        break;
      case "members": {
        const nicks = Array.isArray(m.nicks) ? m.nicks : [];
        setMembers(nicks, m.room, m.ops, m.voiced);
        if (state.listAfterWelcome) {
          state.listAfterWelcome = false;
        } else {
          system(`${nicks.length} in the room: ${nicks.join(", ")}`, "info", m.time);
        }
        break;
      }
      case "history":
        history(m);
        break;
      case "motd":  // the message of the day, after the welcome: the operator's text
        for (const text of Array.isArray(m.lines) ? m.lines : []) {
          system(String(text), "motd", m.time);
        }
        break;
      case "room": {
        const r = room(m.room);
        r.topic = m.topic || "";
        setMembers(Array.isArray(m.nicks) ? m.nicks : [], m.room, m.ops, m.voiced);
        show(m.room);
        if (m.entered) system(`you joined ${m.room}`, "info", m.time);
        if (r.topic) system(`topic: ${r.topic}`, "info", m.time);
        break;
      }
      case "parted":
        forget(m.room);
        if (m.current) {
          show(m.current);
          system(`you left ${m.room}`, "info", m.time);
        } else {
          ui.roomTitle.textContent = "no room";
          ui.roomTopic.textContent = "";
          system(`you left ${m.room}; join a room to talk`, "info", m.time);
        }
        break;
      case "rooms":
        for (const row of Array.isArray(m.rooms) ? m.rooms : []) {
          system(`${row.room} (${row.count})${row.topic ? " " + row.topic : ""}`, "info",
            m.time);
        }
        break;
      case "error":
        error(m);
        break;
      case "invited":  // for the invitee, who is not in the room (yet)
        system(m.nick === state.me ? `you invited ${m.to} to ${m.room}` : m.text, "notice",
          m.time);
        break;
      case "left":
        if (m.by && m.nick === state.me && m.room) {
          removed(m);
          break;
        }
        known(event(m, false), m);
        break;
      default:
        known(event(m, false), m);
    }
  }

  // We were kicked or banned from a room: it goes, and we talk where the server put us.
  function removed(m) {
    const was = state.current === roomKey(m.room);
    forget(m.room);
    if (was) {
      const next = [...state.rooms.values()].pop();
      if (next) show(next.name);
      else ui.roomTitle.textContent = "no room";
    }
    const how = m.how === "banned" ? "banned" : "kicked";
    system(`you were ${how} from ${m.room} by ${m.by}${m.text ? ` (${m.text})` : ""}`,
      "error", m.time);
  }

  // A room line the page shows: marked with its id, so a replay does not show it again.
  function known(item, m) {
    if (typeof m.time === "number") state.seen = Math.max(state.seen, m.time);
    if (item && typeof m.id === "string") item.dataset.id = m.id;
    return item;
  }

  function joined(m) {
    const again = state.everJoined;
    const linked = linkedRoom();  // a link to a room, or the room shown before a reconnect
    if (typeof m.room === "string" && m.room) show(m.room);
    state.phase = "joined";
    state.me = m.nick;
    state.wanted = m.nick;
    state.maxText = m.max_text || 0;
    state.attempt = 0;
    state.everJoined = true;
    state.listAfterWelcome = true;
    state.lastError = null;
    hideJoin();
    ui.me.textContent = m.nick;
    ui.me.hidden = false;
    setStatus("online", "online");
    if (again) system("reconnected", "info", m.time);
    system(m.text, "welcome", m.time);
    if (typeof m.time === "number") state.seen = Math.max(state.seen, m.time);
    setComposer(true);
    ui.text.focus();
    const landed = state.current;
    for (const r of state.rooms.values()) {  // after a reconnect: the other rooms again
      const k = roomKey(r.name);
      if (k !== landed && (!linked || k !== roomKey(linked))) {
        sendJson({ type: "say", text: `/join ${r.name}` });
      }
    }
    // Last, so that it is the current room: the room the link (or the page) showed.
    if (linked && roomKey(linked) !== landed) switchTo(linked);
  }

  function error(m) {
    state.lastError = m.text;
    if (m.about === "nick" && state.phase !== "joined") {
      state.wanted = null;  // the person chooses again; the next prompt must not resend it
      showJoin(null, null);
      showNickError(m.text);
      return;
    }
    if (m.about === "server" && state.phase !== "joined") return;  // shown when it closes
    line("error", m.time, [["text", "! " + m.text]]);
  }

  // One room event, live (history: false) or from the history message (history: true).
  function event(m, old) {
    const mine = m.nick === state.me;
    if (!old && m.room && roomKey(m.room) !== state.current && m.type !== "renamed") {
      const r = room(m.room);
      if (m.type === "said" || m.type === "acted") {
        r.unread += 1;
        drawRooms();
      }
    }
    target = old ? null : m;
    switch (m.type) {
      case "said":
        return line(mine ? "said own" : "said", m.time,
          [["nick", m.nick], ["sep", ": "], ["text", m.text]], old);
      case "acted":
        return line(mine ? "acted own" : "acted", m.time,
          [["sep", "* "], ["nick", m.nick], ["sep", " "], ["text", m.text]], old);
      case "private":
        if (mine && !old) {
          return line("private own", m.time,
            [["sep", "→ "], ["nick", m.to], ["sep", " (private): "], ["text", m.text]]);
        }
        return line("private", m.time,
          [["sep", "[private] "], ["nick", m.nick], ["sep", ": "], ["text", m.text]], old);
      case "joined":
        if (!old) addMember(m.nick, m.room);
        return line("joined", m.time, [["nick", m.nick], ["sep", " joined"]], old);
      case "left":
        if (!old) removeMember(m.nick, m.room);
        if (m.by) {
          return line("left", m.time, [["nick", m.nick],
            ["sep", m.how === "banned" ? " was banned by " : " was kicked by "],
            ["nick", m.by], ["sep", m.text ? ` (${m.text})` : ""]], old);
        }
        return line("left", m.time,
          [["nick", m.nick], ["sep", m.text ? ` left (${m.text})` : " left"]], old);
      case "role":
        if (!old && m.room) setRole(m);
        return system(m.text, "notice", m.time, old);
      case "mode":
      case "mask":  // moderation: the server words it
        return system(m.text, "notice", m.time, old);
      case "topic":
        if (m.query) {
          return system(m.text ? `topic of ${m.room}: ${m.text}` : `${m.room} has no topic`,
            "info", m.time);
        }
        if (!old && m.room) {
          room(m.room).topic = m.text || "";
          if (roomKey(m.room) === state.current) ui.roomTopic.textContent = m.text || "";
        }
        return line("notice", m.time,
          [["nick", m.nick], ["sep", m.text ? " set the topic: " : " cleared the topic"],
            ["text", m.text || ""]], old);
      case "renamed":
        if (!old) {
          if (mine) {
            state.me = state.wanted = m.new_nick;
            ui.me.textContent = m.new_nick;
          }
          let shown = null;
          for (const r of state.rooms.values()) {  // told once: shown in each room shared
            if (!r.members.has(key(m.nick))) continue;
            r.members.delete(key(m.nick));
            r.members.set(key(m.new_nick), m.new_nick);
            const role = r.roles.get(key(m.nick));
            r.roles.delete(key(m.nick));
            if (role) r.roles.set(key(m.new_nick), role);
            target = { room: r.name };
            shown = mine
              ? line("renamed own", m.time, [["sep", "you are now known as "], ["nick", m.new_nick]])
              : line("renamed", m.time,
                [["nick", m.nick], ["sep", " is now known as "], ["nick", m.new_nick]]);
          }
          drawMembers();
          return shown;
        }
        return line("renamed", m.time,
          [["nick", m.nick], ["sep", " is now known as "], ["nick", m.new_nick]], old);
      case "notice":
        return system(m.text, "notice", m.time, old);
      default:
        return null;  // a newer server's message: ignore it
    }
  }

  // Earlier lines, at the bottom: the replay on joining comes just before the welcome; the
  // answer to /history or /search goes between two markers, so nobody takes it for live chat.
  function history(m) {
    let records = Array.isArray(m.records) ? m.records : [];
    const join = m.context === "join";
    if (join) records = unseen(records, listFor(m));
    if (!records.length) return;
    const count = records.length === 1 ? "1 line" : `${records.length} lines`;
    // A rejoin's replay comes before its welcome (the page is not "joined" yet then).
    const away = state.everJoined && state.phase !== "joined";
    let title = away ? "while you were away" : "earlier messages";
    let end = null;
    if (m.context === "history") {
      title = `last ${count}`;
      end = "end of history";
    } else if (m.context === "search") {
      title = `${count} matching “${m.query || ""}”, newest first`;
      end = "end of search";
    }
    const items = [makeLine("divider", null, [["text", title]])];
    for (const record of records) {
      const item = event(record, true);
      if (item) items.push(join ? known(item, record) : item);
    }
    if (end) items.push(makeLine("divider", null, [["text", end]]));
    const list = listFor(m);
    for (const item of items) list.appendChild(item);
    trim();
    list.scrollTop = list.scrollHeight;
  }

  // The part of a replay (oldest first) the page does not show yet. After a reconnect the
  // replay repeats lines the page already shows: the newest of those is where the page
  // left off, and only what follows it is new; what precedes it was shown, or is older
  // than what is shown (the page's own earlier join, lines trimmed off the top). Without
  // such a line (a gap longer than the replay), what is newer than the page's last news.
  function unseen(records, list) {
    const shown = new Set();
    for (const item of list.querySelectorAll("li[data-id]")) shown.add(item.dataset.id);
    for (let i = records.length - 1; i >= 0; i--) {
      if (shown.has(records[i].id)) return records.slice(i + 1);
    }
    return records.filter((record) => !(record.time <= state.seen));
  }

  // -- the message list --------------------------------------------------------------

  function makeLine(kind, time, parts, old) {
    const item = document.createElement("li");
    item.className = "line " + kind.split(" ").map((k) => "line-" + k).join(" ");
    if (old) item.classList.add("line-history");
    if (typeof time === "number") {
      const when = new Date(time * 1000);
      const stamp = document.createElement("time");
      stamp.dateTime = when.toISOString();
      stamp.title = when.toLocaleString();
      stamp.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      item.appendChild(stamp);
    }
    const body = document.createElement("span");
    body.className = "body";
    for (const [cls, text] of parts) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;  // never parsed as HTML: what people type stays text
      body.appendChild(span);
    }
    item.appendChild(body);
    return item;
  }

  // Append a line (or, for history, just build it), keeping the view at the bottom.
  let target = null;  // the message whose room a line belongs to, while it is drawn

  function line(kind, time, parts, old) {
    const item = makeLine(kind, time, parts, old);
    if (old) return item;
    const list = listFor(target);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(item);
    trim();
    if (atBottom) list.scrollTop = list.scrollHeight;
    return item;
  }

  function system(text, kind, time, old) {
    return line(kind, typeof time === "number" ? time : Date.now() / 1000,
      [["text", text]], old);
  }

  function trim() {
    for (const list of [ui.messages, ...[...state.rooms.values()].map((r) => r.list)]) {
      while (list.childElementCount > MAX_LINES) list.removeChild(list.firstElementChild);
    }
  }

  // -- the member list ---------------------------------------------------------------

  function membersOf(name) {
    const r = name ? room(name) : currentRoom();
    return r ? r.members : new Map();
  }

  function rolesOf(name) {
    const r = name ? room(name) : currentRoom();
    return r ? r.roles : new Map();
  }

  // A room's members; /who marks operators "@" and voiced members "+", and the room and
  // welcome messages list them in "ops" and "voiced".
  function setMembers(nicks, name, ops, voiced) {
    const members = membersOf(name);
    const roles = rolesOf(name);
    members.clear();
    roles.clear();
    for (const marked of nicks) {
      const mark = /^[@+]/.test(marked) ? marked[0] : "";
      const nick = marked.slice(mark.length);
      members.set(key(nick), nick);
      if (mark) roles.set(key(nick), mark);
    }
    for (const nick of Array.isArray(voiced) ? voiced : []) roles.set(key(nick), "+");
    for (const nick of Array.isArray(ops) ? ops : []) roles.set(key(nick), "@");
    drawMembers();
  }

  function addMember(nick, name) {
    membersOf(name).set(key(nick), nick);
    drawMembers();
  }

  function removeMember(nick, name) {
    membersOf(name).delete(key(nick));
    rolesOf(name).delete(key(nick));
    drawMembers();
  }

  // An operator made someone an operator or voiced them, or took it back.
  function setRole(m) {
    const roles = rolesOf(m.room);
    const k = key(m.target);
    if (m.change === "+o") roles.set(k, "@");
    else if (m.change === "+v" && roles.get(k) !== "@") roles.set(k, "+");
    else if (m.change === "-o" || m.change === "-v") {
      if (roles.get(k) === (m.change === "-o" ? "@" : "+")) roles.delete(k);
    }
    drawMembers();
  }

  const ACTIONS = [  // [label, command, shown for a member with this role or not]
    ["op", "op", (role) => role !== "@"], ["deop", "deop", (role) => role === "@"],
    ["voice", "voice", (role) => !role], ["devoice", "devoice", (role) => role === "+"],
    ["mute", "mute", () => true], ["kick", "kick", () => true], ["ban", "ban", () => true],
  ];

  function drawMembers() {
    const r = currentRoom();
    const roles = rolesOf(null);
    const mine = state.me !== null && roles.get(key(state.me)) === "@";
    const nicks = [...membersOf(null).values()].sort(
      (a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }));
    const items = nicks.map((nick) => {
      const item = document.createElement("li");
      const role = roles.get(key(nick)) || "";
      if (role) {
        const mark = document.createElement("span");
        mark.className = "role";
        mark.textContent = role;
        mark.title = role === "@" ? "operator" : "voiced";
        item.appendChild(mark);
        item.classList.add(role === "@" ? "op" : "voiced");
      }
      const name = document.createElement("span");
      name.className = "nick";
      name.textContent = nick;
      item.appendChild(name);
      if (nick === state.me) item.classList.add("self");
      if (mine && r && nick !== state.me) item.appendChild(actions(r.name, nick, role));
      return item;
    });
    ui.members.replaceChildren(...items);
    ui.peopleCount.textContent = String(nicks.length);
  }

  // What an operator of the room may do to a member: a command, as if typed.
  function actions(roomName, nick, role) {
    const box = document.createElement("span");
    box.className = "actions";
    for (const [label, command, shown] of ACTIONS) {
      if (!shown(role)) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "action action-" + command;
      button.textContent = label;
      button.title = `/${command} ${nick} in ${roomName}`;
      button.addEventListener("click", () => {
        sendJson({ type: "say", text: `/${command} ${roomName} ${nick}` });
      });
      box.appendChild(button);
    }
    return box;
  }

  // -- the controls ------------------------------------------------------------------

  function setStatus(kind, text) {
    ui.status.dataset.state = kind;
    ui.status.textContent = text;
    // Once in the room, losing the connection is said where the person is looking.
    const away = kind !== "online" && kind !== "connecting" && state.everJoined;
    document.body.classList.toggle("offline", kind !== "online");
    ui.banner.textContent = away ? text : "";
    ui.banner.hidden = !away || state.phase === "left";
  }

  function setComposer(on) {
    ui.text.disabled = !on;
    ui.send.disabled = !on;
  }

  function showJoin(title, note) {
    if (title) ui.joinTitle.textContent = title;
    if (note !== null) {
      ui.joinNote.textContent = note || "";
      ui.joinNote.hidden = !note;
    }
    ui.join.hidden = false;
    ui.joinButton.disabled = false;
    ui.nick.disabled = false;
    if (state.phase !== "password") ui.passwordField.hidden = true;
    if (!ui.nick.value && state.wanted) ui.nick.value = state.wanted;
    ui.nick.focus();
  }

  function hideJoin() {
    ui.join.hidden = true;
    ui.passwordField.hidden = true;
    ui.password.value = "";
    ui.nickError.hidden = true;
    ui.joinNote.hidden = true;
  }

  function showNickError(text) {
    ui.nickError.textContent = text;
    ui.nickError.hidden = false;
    ui.nick.setAttribute("aria-invalid", "true");
    ui.nick.select();
  }

  function showTextError(text) {
    ui.textError.textContent = text;
    ui.textError.hidden = !text;
  }

  ui.joinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.phase === "password") {  // never kept: sent once, the field cleared
      const password = ui.password.value;
      ui.password.value = "";
      ui.passwordField.hidden = true;
      ui.joinButton.disabled = true;
      state.phase = "choosing";
      sendJson({ type: "password", password });
      return;
    }
    const nick = ui.nick.value.trim();
    ui.nick.removeAttribute("aria-invalid");
    ui.nickError.hidden = true;
    if (!nick) {
      showNickError("a nickname needs at least one character");
      return;
    }
    state.wanted = nick;
    state.lastError = null;
    ui.joinButton.disabled = true;
    if (state.phase === "choosing" && sendJson({ type: "nick", nick })) return;
    state.attempt = 0;
    connect();
  });

  ui.nick.addEventListener("input", () => {
    ui.joinButton.disabled = false;
  });

  ui.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = ui.text.value;
    if (!text.trim()) return;
    const size = encoder.encode(text).length;
    if (state.maxText && size > state.maxText) {
      showTextError(`too long: ${size} bytes, at most ${state.maxText}`);
      return;
    }
    if (!sendJson({ type: "say", text })) {
      showTextError("not connected: your message was not sent");
      return;
    }
    showTextError("");
    if (/^\/quit(\s|$)/i.test(text)) state.phase = "left";
    state.sent.push(text);
    if (state.sent.length > 50) state.sent.shift();
    state.sentAt = state.sent.length;
    ui.text.value = "";
  });

  ui.text.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    if (!state.sent.length) return;
    e.preventDefault();
    const step = e.key === "ArrowUp" ? -1 : 1;
    state.sentAt = Math.min(state.sent.length, Math.max(0, state.sentAt + step));
    ui.text.value = state.sent[state.sentAt] || "";
  });

  ui.text.addEventListener("input", () => showTextError(""));

  ui.reconnect.addEventListener("click", () => connect());

  ui.roomForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = ui.roomName.value.trim();
    if (!name || state.phase !== "joined") return;
    switchTo(name.startsWith("#") ? name : "#" + name);
    ui.roomName.value = "";
  });

  window.addEventListener("hashchange", () => {
    const linked = linkedRoom();
    if (linked && roomKey(linked) !== state.current) switchTo(linked);
  });

  ui.peopleToggle.addEventListener("click", () => {
    const open = ui.people.classList.toggle("open");
    ui.peopleToggle.setAttribute("aria-expanded", String(open));
  });

  window.addEventListener("online", () => {
    if (state.retryTimer !== null) connect();
  });

  // Leaving the page (or the browser keeping it in its back/forward cache) closes the
  // socket, so the room hears at once that we left; coming back to it rejoins.
  window.addEventListener("pagehide", () => {
    clearRetry();
    if (state.ws) state.ws.close(1000, "page closed");
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted && state.wanted !== null && !state.ws) {
      state.attempt = 0;
      connect();
    }
  });

  ui.nick.focus();
})();
