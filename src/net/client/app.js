// mudshard's browser client: one WebSocket session (DESIGN §4), a log,
// a command line with history, the current room with clickable exits, and
// reconnection that resumes the session so that nothing is missed.
//
// Every string from the server reaches the page through textContent, never
// as HTML.
'use strict';

(() => {
  // Bounds: everything that grows with time has one.
  const LOG_LINES_MAX = 2000; // lines kept in the log; the oldest go first
  const HISTORY_MAX = 100; // command lines kept for up/down
  const QUEUED_LINES_MAX = 20; // lines typed while reconnecting, sent once back
  const PENDING_IDS_MAX = 256; // commands awaiting their reply (for its colour)
  const BACKOFF_BASE_MS = 500; // first reconnect delay, doubled per attempt…
  const BACKOFF_MAX_MS = 15000; // …up to this
  const HEARTBEAT_MS = 20000; // a ping after this long without a frame…
  const HEARTBEAT_TIMEOUT_MS = 20000; // …and the socket given up after this long without its pong
  const STORAGE_KEY = 'mudshard.session';

  // Close codes the server sends (src/protocol/close.rs) after which the
  // session is over for good: reconnecting would not bring it back.
  const CLOSE_NORMAL = 1000; // quit, or the server answering our close
  const CLOSE_TAKEN_OVER = 4001; // the account logged in elsewhere

  const $ = (id) => document.getElementById(id);
  const ui = {
    log: $('log'),
    line: $('line'),
    send: $('send'),
    input: $('input'),
    who: $('who'),
    status: $('status'),
    statusText: $('status-text'),
    room: $('room'),
    roomName: $('room-name'),
    exits: $('exits'),
    here: $('room-here'),
    gate: $('gate'),
    gateError: $('gate-error'),
  };

  // The session: who we are, how to come back, and the last frame seen.
  const session = {
    ws: null,
    // {kind: 'guest'|'account', name, token, chosen (a guest's own name or null)}
    auth: null,
    lastSeq: 0,
    // What the socket is for once open: 'login' (send `pendingLogin`) or 'resume'.
    opening: null,
    pendingLogin: null,
    // Whether a login was answered by welcome yet (otherwise errors go to the gate).
    playing: false,
    // A resume sent and not answered yet.
    resuming: false,
    // After resume_failed: logging in again on the same socket.
    relogin: false,
    attempt: 0,
    reconnectTimer: null,
    heartbeatTimer: null,
    lastFrameAt: 0,
    pingSentAt: 0,
    nextId: 1,
    pending: new Map(), // command id → event kind its reply is coloured as
    queued: [],
    room: null,
  };

  const history = { lines: [], at: 0, draft: '' };

  // ---- the log -------------------------------------------------------------

  function atBottom() {
    const l = ui.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }

  // Appends one line of the given kind; `parts` are strings or
  // [className, string] pairs, all set as text.
  function logLine(kind, ...parts) {
    const follow = atBottom();
    const div = document.createElement('div');
    div.className = 'line k-' + kind;
    for (const part of parts) {
      if (Array.isArray(part)) {
        const span = document.createElement('span');
        span.className = part[0];
        span.textContent = part[1];
        div.appendChild(span);
      } else {
        div.appendChild(document.createTextNode(String(part)));
      }
    }
    ui.log.appendChild(div);
    while (ui.log.childElementCount > LOG_LINES_MAX) {
      ui.log.firstElementChild.remove();
    }
    if (follow) ui.log.scrollTop = ui.log.scrollHeight;
  }

  const note = (text) => logLine('client', text);

  // ---- the connection indicator ---------------------------------------------

  function setStatus(state, text) {
    ui.status.className = 'status ' + state;
    ui.statusText.textContent = text;
    const usable = state === 'online';
    ui.line.disabled = !session.playing;
    ui.send.disabled = !session.playing;
    ui.status.dataset.state = state;
    if (usable && session.playing && !ui.gate.hidden) ui.gate.hidden = true;
  }

  // ---- the room ---------------------------------------------------------------

  function str(v) {
    return typeof v === 'string' ? v : '';
  }

  function showRoom(room) {
    if (!room || typeof room !== 'object') return;
    session.room = room;
    ui.room.hidden = false;
    ui.roomName.textContent = str(room.name) || str(room.id);
    ui.exits.replaceChildren();
    const exits = room.exits && typeof room.exits === 'object' ? Object.keys(room.exits) : [];
    if (exits.length === 0) {
      const none = document.createElement('span');
      none.className = 'none';
      none.textContent = 'No exits.';
      ui.exits.appendChild(none);
    }
    for (const dir of exits) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'exit';
      b.textContent = dir;
      b.dataset.dir = dir;
      b.title = 'go ' + dir;
      b.addEventListener('click', () => command('go ' + dir, true));
      ui.exits.appendChild(b);
    }
    showHere(room);
  }

  // Who and what is in the room, under its exits.
  function showHere(room) {
    const here = [];
    const items = Array.isArray(room.items) ? room.items.filter((i) => typeof i === 'string') : [];
    if (items.length) here.push('Items: ' + items.join(', '));
    const players = Array.isArray(room.players) ? room.players.filter((p) => typeof p === 'string') : [];
    if (players.length) {
      const total = Number.isInteger(room.players_total) ? room.players_total : players.length;
      const more = total > players.length ? ' and ' + (total - players.length) + ' more' : '';
      here.push('Here: ' + players.join(', ') + more);
    }
    ui.here.textContent = here.join(' · ');
  }

  // The look text of a room object (welcome carries no text of its own).
  function describe(room) {
    if (!room || typeof room !== 'object') return;
    logLine('room', ['room-title', str(room.name)]);
    if (str(room.description)) logLine('room', str(room.description));
    const exits = room.exits && typeof room.exits === 'object' ? Object.keys(room.exits) : [];
    logLine('room', 'Exits: ' + (exits.length ? exits.join(', ') : 'none') + '.');
  }

  // ---- frames from the server ---------------------------------------------------

  function onFrame(text) {
    session.lastFrameAt = Date.now();
    let f;
    try {
      f = JSON.parse(text);
    } catch (e) {
      return logLine('error', 'The server sent something that is not JSON.');
    }
    if (!f || typeof f !== 'object') return;
    if (typeof f.seq === 'number') {
      // Replayed frames keep their seq; one seen already is not shown twice.
      if (f.type !== 'welcome' && f.seq <= session.lastSeq) return;
      if (f.type !== 'welcome' && session.lastSeq > 0 && f.seq !== session.lastSeq + 1) {
        note('Frames ' + (session.lastSeq + 1) + '–' + (f.seq - 1) + ' never arrived.');
      }
      session.lastSeq = f.seq;
      save();
    }
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'resumed': return onResumed(f);
      case 'reply': return onReply(f);
      case 'event': return onEvent(f);
      case 'error': return onError(f);
      case 'pong': session.pingSentAt = 0; return;
      default: return;
    }
  }

  function onWelcome(f) {
    const wasRelogin = session.relogin;
    const name = str(f.name);
    session.auth = {
      kind: session.auth ? session.auth.kind : 'guest',
      name,
      token: str(f.token),
      chosen: session.auth ? session.auth.chosen : null,
    };
    session.lastSeq = typeof f.seq === 'number' ? f.seq : 1;
    session.playing = true;
    session.relogin = false;
    session.attempt = 0;
    session.pending.clear();
    save();
    ui.who.textContent = name + (session.auth.kind === 'guest' ? ' (guest)' : '');
    ui.gate.hidden = true;
    setStatus('online', 'online');
    if (wasRelogin) {
      note('Logged in again as ' + name + '. Frames sent while the old session was gone are lost.');
    } else {
      note('Welcome, ' + name + '. Type help for the commands.');
    }
    showRoom(f.room);
    describe(f.room);
    flushQueued();
    ui.line.focus();
  }

  function onResumed(f) {
    session.resuming = false;
    const k = Number.isInteger(f.replayed) ? f.replayed : 0;
    session.attempt = 0;
    session.playing = true;
    setStatus('online', 'online');
    note('Reconnected: session resumed, ' + k + ' missed frame' + (k === 1 ? '' : 's') + ' replayed.');
    if (!session.room) command('look', false);
    flushQueued();
  }

  function onReply(f) {
    let kind = 'reply';
    if (f.id !== undefined && session.pending.has(f.id)) {
      kind = session.pending.get(f.id);
      session.pending.delete(f.id);
    }
    if (f.ok === false) kind = 'fail';
    if (f.room) showRoom(f.room);
    if (typeof f.text === 'string') logLine(kind, f.text);
  }

  function onEvent(f) {
    const kind = str(f.kind);
    const from = str(f.from);
    const text = str(f.text);
    switch (kind) {
      case 'say': return logLine('say', ['from', from], ' says, "' + text + '"');
      case 'tell': return logLine('tell', ['from', from], ' tells you, "' + text + '"');
      case 'shout': return logLine('shout', ['from', from], ' shouts, "' + text + '"');
      case 'emote': return logLine('emote', from + ' ' + text);
      case 'enter': case 'leave':
        presence(kind, str(f.room), from);
        return logLine(kind, text);
      case 'ambient': case 'item': case 'system':
        return logLine(kind, text);
      default:
        return logLine('system', (from ? from + ': ' : '') + text);
    }
  }

  // Keeps the room panel's list of players current between looks.
  function presence(kind, roomId, name) {
    const room = session.room;
    if (!room || !name || roomId !== str(room.id) || !Array.isArray(room.players)) return;
    const at = room.players.indexOf(name);
    const total = Number.isInteger(room.players_total) ? room.players_total : room.players.length;
    if (kind === 'enter' && at < 0) {
      room.players.push(name);
      room.players_total = total + 1;
    } else if (kind === 'leave' && at >= 0) {
      room.players.splice(at, 1);
      room.players_total = Math.max(0, total - 1);
    }
    showHere(room);
  }

  function onError(f) {
    const code = str(f.code);
    const message = str(f.message) || code;
    // A refused command: its reply will not come.
    if (f.id !== undefined) session.pending.delete(f.id);
    if (session.resuming) {
      session.resuming = false;
      if (code === 'resume_failed') return loginAgain(message);
      // Refused for now (too many tries, the server busy): try again later.
      note('Could not resume yet: ' + message);
      const ws = session.ws;
      session.ws = null;
      if (ws) {
        ws.onclose = null;
        ws.close();
      }
      return scheduleReconnect(null);
    }
    if (!session.playing) {
      if (session.relogin) return reloginRefused(code, message);
      return refuseAtGate(message);
    }
    logLine('error', message);
  }

  // ---- logging in -----------------------------------------------------------------

  // Back to the login forms with why. The socket goes too (quietly): the
  // server would close it at its login timeout, and the next try opens anew.
  function refuseAtGate(message) {
    const ws = session.ws;
    session.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
    session.playing = false;
    ui.gateError.textContent = message;
    ui.gate.hidden = false;
    setStatus('offline', 'offline');
  }

  // Sends a login frame, opening the socket first if there is none.
  function login(frame, auth) {
    ui.gateError.textContent = '';
    session.auth = auth;
    session.playing = false;
    session.relogin = false;
    session.lastSeq = 0;
    if (session.ws && session.ws.readyState === WebSocket.OPEN) {
      session.ws.send(JSON.stringify(frame));
      return;
    }
    session.pendingLogin = frame;
    open('login');
  }

  // The resume was refused (the window passed, or the server restarted):
  // a fresh login on the same socket, as the protocol allows.
  function loginAgain(why) {
    const auth = session.auth;
    session.playing = false;
    session.relogin = true;
    session.lastSeq = 0;
    if (!auth) return refuseAtGate(why);
    let frame;
    if (auth.kind === 'account' && auth.token) {
      note('Could not resume the session; logging in again as ' + auth.name + '.');
      frame = { type: 'login', token: auth.token };
    } else if (auth.chosen) {
      note('Could not resume the session; logging in again as a new guest, ' + auth.chosen + '.');
      frame = { type: 'guest', name: auth.chosen };
    } else {
      note('Could not resume the session; logging in again as a new guest.');
      frame = { type: 'guest' };
    }
    setStatus('connecting', 'logging in again');
    send(frame);
  }

  // A login after resume_failed was refused too.
  function reloginRefused(code, message) {
    const auth = session.auth;
    if (code === 'name_taken' && auth && auth.kind === 'guest' && auth.chosen) {
      // Our old session may still hold the name: any guest name will do.
      auth.chosen = null;
      note('The name is still taken; logging in as a guest with a new name.');
      return send({ type: 'guest' });
    }
    session.relogin = false;
    session.auth = null;
    clearSaved();
    note('Could not log in again: ' + message);
    refuseAtGate('Please log in again: ' + message);
  }

  function wireGate() {
    for (const tab of document.querySelectorAll('.tabs button')) {
      tab.addEventListener('click', () => {
        for (const t of document.querySelectorAll('.tabs button')) {
          t.setAttribute('aria-selected', String(t === tab));
        }
        for (const form of document.querySelectorAll('.gate-form')) {
          form.hidden = form.dataset.kind !== tab.dataset.tab;
        }
        ui.gateError.textContent = '';
      });
    }
    $('form-guest').addEventListener('submit', (e) => {
      e.preventDefault();
      const name = e.target.elements.name.value.trim();
      const frame = name ? { type: 'guest', name } : { type: 'guest' };
      login(frame, { kind: 'guest', name, token: '', chosen: name || null });
    });
    for (const kind of ['login', 'register']) {
      $('form-' + kind).addEventListener('submit', (e) => {
        e.preventDefault();
        const name = e.target.elements.name.value.trim();
        const password = e.target.elements.password.value;
        e.target.elements.password.value = '';
        login({ type: kind, name, password }, { kind: 'account', name, token: '', chosen: null });
      });
    }
  }

  // ---- the socket, and coming back after a drop --------------------------------------

  function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.host + '/ws';
  }

  function open(purpose) {
    clearTimeout(session.reconnectTimer);
    session.reconnectTimer = null;
    session.opening = purpose;
    const old = session.ws;
    if (old) {
      old.onclose = null;
      old.close();
    }
    setStatus('connecting', purpose === 'resume' ? 'reconnecting…' : 'connecting…');
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      return lost(null, 'cannot open a WebSocket: ' + e.message);
    }
    session.ws = ws;
    ws.onopen = () => {
      if (session.ws !== ws) return;
      session.lastFrameAt = Date.now();
      session.pingSentAt = 0;
      if (session.opening === 'resume' && session.auth && session.auth.token) {
        setStatus('connecting', 'resuming…');
        session.resuming = true;
        ws.send(JSON.stringify({ type: 'resume', token: session.auth.token, last_seq: session.lastSeq }));
      } else if (session.pendingLogin) {
        setStatus('connecting', 'logging in…');
        ws.send(JSON.stringify(session.pendingLogin));
        session.pendingLogin = null;
      }
    };
    ws.onmessage = (m) => {
      if (session.ws !== ws) return;
      if (typeof m.data === 'string') onFrame(m.data);
    };
    ws.onclose = (e) => {
      if (session.ws !== ws) return;
      lost(e.code, e.reason);
    };
    ws.onerror = () => {
      // onclose follows and decides.
    };
  }

  // The socket is gone: come back (with resume) unless the session is over.
  function lost(code, reason) {
    session.ws = null;
    session.resuming = false;
    if (code === CLOSE_TAKEN_OVER) {
      return over('Logged in from elsewhere; this page lets the session go.');
    }
    if (code === CLOSE_NORMAL) {
      return over(reason ? 'Disconnected: ' + reason + '.' : 'Disconnected.');
    }
    if (!session.auth || (!session.playing && !session.relogin)) {
      // Not in the world yet: nothing to come back to.
      return refuseAtGate('The connection was lost' + (reason ? ' (' + reason + ')' : '') + '; try again.');
    }
    if (session.relogin || !session.auth.token) {
      // Lost while logging in again: the next attempt logs in from scratch.
      session.playing = false;
    }
    scheduleReconnect(code);
  }

  function over(message) {
    session.playing = false;
    session.auth = null;
    clearSaved();
    note(message);
    setStatus('offline', 'offline');
    ui.gate.hidden = false;
  }

  function scheduleReconnect(code) {
    session.attempt += 1;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(session.attempt - 1, 16));
    // Equal jitter: half the delay fixed, half random, so that many clients
    // cut at once do not all come back in the same instant.
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    const seconds = (delay / 1000).toFixed(1);
    if (session.attempt === 1) {
      note('Connection lost' + (code ? ' (' + code + ')' : '') + '; reconnecting…');
    }
    setStatus('reconnecting', 'reconnecting in ' + seconds + ' s (attempt ' + session.attempt + ')');
    clearTimeout(session.reconnectTimer);
    session.reconnectTimer = setTimeout(reconnect, delay);
  }

  function reconnect() {
    clearTimeout(session.reconnectTimer);
    session.reconnectTimer = null;
    if (session.playing && session.auth && session.auth.token) {
      return open('resume');
    }
    // Lost while logging in again: log in again from the start.
    const auth = session.auth;
    if (!auth) return;
    if (auth.kind === 'account' && auth.token) {
      session.pendingLogin = { type: 'login', token: auth.token };
    } else {
      session.pendingLogin = auth.chosen ? { type: 'guest', name: auth.chosen } : { type: 'guest' };
    }
    session.relogin = true;
    open('login');
  }

  function send(frame) {
    if (!session.ws || session.ws.readyState !== WebSocket.OPEN) return false;
    session.ws.send(JSON.stringify(frame));
    return true;
  }

  // A ping when the socket has been quiet: a connection that died without
  // a word (a phone asleep, a network gone) is noticed and replaced.
  function heartbeat() {
    const ws = session.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !session.playing) return;
    const now = Date.now();
    if (session.pingSentAt && now - session.pingSentAt > HEARTBEAT_TIMEOUT_MS) {
      note('The server stopped answering.');
      session.ws = null;
      ws.onclose = null;
      ws.close();
      return lost(null, 'no answer');
    }
    if (!session.pingSentAt && now - session.lastFrameAt > HEARTBEAT_MS) {
      session.pingSentAt = now;
      send({ type: 'ping' });
    }
  }

  // ---- commands ---------------------------------------------------------------------

  // The event kind a command's reply is coloured as.
  function kindOf(line) {
    const word = line.trim().split(/\s+/)[0].toLowerCase();
    if (word.startsWith("'") || word === 'say') return 'say';
    if (word.startsWith(':') || word === 'emote') return 'emote';
    if (word === 'tell') return 'tell';
    if (word === 'shout') return 'shout';
    return 'reply';
  }

  function command(line, echo) {
    if (!line.trim()) return;
    if (echo) logLine('echo', '> ' + line);
    if (!session.playing || !session.ws || session.ws.readyState !== WebSocket.OPEN) {
      if (session.queued.length >= QUEUED_LINES_MAX) {
        return logLine('error', 'Not connected; this line is dropped.');
      }
      session.queued.push(line);
      return note('Not connected; this will be sent once back.');
    }
    const id = session.nextId++;
    if (session.pending.size >= PENDING_IDS_MAX) session.pending.clear();
    session.pending.set(id, kindOf(line));
    send({ type: 'cmd', id, line });
  }

  function flushQueued() {
    const lines = session.queued.splice(0);
    for (const line of lines) command(line, false);
  }

  function wireInput() {
    ui.input.addEventListener('submit', (e) => {
      e.preventDefault();
      const line = ui.line.value;
      ui.line.value = '';
      if (!line.trim()) return;
      if (history.lines[history.lines.length - 1] !== line) {
        history.lines.push(line);
        if (history.lines.length > HISTORY_MAX) history.lines.shift();
      }
      history.at = history.lines.length;
      history.draft = '';
      command(line, true);
    });
    ui.line.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
      e.preventDefault();
      if (history.at === history.lines.length) history.draft = ui.line.value;
      if (e.key === 'ArrowUp') history.at = Math.max(0, history.at - 1);
      else history.at = Math.min(history.lines.length, history.at + 1);
      ui.line.value = history.at === history.lines.length ? history.draft : history.lines[history.at];
      const end = ui.line.value.length;
      ui.line.setSelectionRange(end, end);
    });
  }

  // ---- a reload comes back to the same session ----------------------------------------

  // The token and last seq, per tab (sessionStorage): a reload resumes.
  function save() {
    if (!session.auth || !session.auth.token) return;
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ auth: session.auth, lastSeq: session.lastSeq }));
    } catch (e) {
      // Storage may be off (private mode); a reload then starts afresh.
    }
  }

  function clearSaved() {
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      // As above.
    }
  }

  function restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    } catch (e) {
      saved = null;
    }
    if (!saved || !saved.auth || typeof saved.auth.token !== 'string' || !saved.auth.token) return false;
    session.auth = {
      kind: saved.auth.kind === 'account' ? 'account' : 'guest',
      name: str(saved.auth.name),
      token: saved.auth.token,
      chosen: typeof saved.auth.chosen === 'string' ? saved.auth.chosen : null,
    };
    session.lastSeq = Number.isInteger(saved.lastSeq) ? saved.lastSeq : 0;
    session.playing = true;
    ui.gate.hidden = true;
    ui.who.textContent = session.auth.name;
    note('Coming back to your session as ' + session.auth.name + '…');
    open('resume');
    return true;
  }

  // ---- start ----------------------------------------------------------------------

  wireGate();
  wireInput();
  setInterval(heartbeat, 5000);
  window.addEventListener('online', () => {
    // The network is back: no need to wait out the backoff.
    if (session.reconnectTimer) reconnect();
  });
  if (!restore()) {
    setStatus('offline', 'offline');
    note('Welcome to mudshard. Play as a guest, log in, or register.');
  }

  // A read-only view of the client's state, for tests and the curious.
  window.mudshard = Object.freeze({
    state: () => ({
      status: ui.status.dataset.state || '',
      playing: session.playing,
      name: session.auth ? session.auth.name : null,
      lastSeq: session.lastSeq,
      room: session.room ? str(session.room.id) : null,
      attempt: session.attempt,
    }),
  });
})();
