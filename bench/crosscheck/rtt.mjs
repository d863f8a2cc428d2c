// An independent check of loadgen's `rtt` figures: the same workload, from a
// client that shares no code with loadgen (Node.js and the `ws` package).
//
// N guest sessions; `look` commands at an aggregate open-loop rate, dealt to
// the sessions in turn; each reply timed from the command's intended send
// time (so a client that falls behind its schedule counts the lag as
// latency, as loadgen does: coordinated omission corrected). Prints one
// JSON line: the rate achieved and the latency percentiles of the measured
// window.
//
//   node rtt.mjs --target 127.0.0.1:4000 --players 1000 --rate 2000 \
//                --warmup 3 --duration 10 [--source-ips 4] [--command look]
//
// `scripts/crosscheck.sh` runs it beside loadgen against one server.

import WebSocket from 'ws';

function args() {
  const opts = {
    target: '127.0.0.1:4000',
    players: 1000,
    rate: 2000,
    warmup: 3,
    duration: 10,
    'source-ips': 1,
    command: 'look',
    'connect-concurrency': 200,
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts) || argv[i + 1] === undefined) {
      console.error(`rtt.mjs: unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

const opts = args();
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// 127.0.0.1, 127.0.0.2, …: as loadgen's --source-ips, so that many
// sessions do not run out of one address's ports.
function sourceIp(i) {
  return `127.0.0.${1 + (i % opts['source-ips'])}`;
}

function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${opts.target}/ws`, {
      localAddress: sourceIp(i),
      perMessageDeflate: false,
    });
    const timer = setTimeout(() => reject(new Error(`session ${i}: no welcome in 30 s`)), 30000);
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'guest' })));
    ws.once('message', (data) => {
      clearTimeout(timer);
      const frame = JSON.parse(data);
      if (frame.type !== 'welcome') {
        reject(new Error(`session ${i}: expected welcome, got ${data}`));
        return;
      }
      resolve(ws);
    });
  });
}

async function openAll() {
  const sessions = new Array(opts.players);
  let next = 0;
  const worker = async () => {
    while (next < opts.players) {
      const i = next++;
      sessions[i] = await open(i);
    }
  };
  await Promise.all(Array.from({ length: opts['connect-concurrency'] }, worker));
  return sessions;
}

const sessions = await openAll();
const pending = new Map(); // id → [intended send time, actual send time] (ms)
const latencies = []; // from the intended send time (CO corrected)
const serviceTimes = []; // from the moment the frame was handed to the socket
let sent = 0;
let replies = 0;
let errors = 0; // replies in the window with ok:false, and socket errors
let windowStart = 0;
let windowEnd = 0;

for (const ws of sessions) {
  ws.on('message', (data) => {
    const now = nowMs();
    const frame = JSON.parse(data);
    if (frame.type !== 'reply' || frame.id === undefined) return;
    const times = pending.get(frame.id);
    if (times === undefined) return;
    const [intended, actual] = times;
    pending.delete(frame.id);
    if (intended >= windowStart && intended < windowEnd) {
      replies++;
      if (!frame.ok) errors++;
      latencies.push(now - intended);
      serviceTimes.push(now - actual);
    }
  });
  ws.on('error', () => errors++);
}

const start = nowMs() + 100;
windowStart = start + opts.warmup * 1000;
windowEnd = windowStart + opts.duration * 1000;
const interval = 1000 / opts.rate;
let k = 0;
let lagMax = 0;

await new Promise((resolve) => {
  const tick = () => {
    const now = nowMs();
    while (true) {
      const intended = start + k * interval;
      if (intended > now || intended >= windowEnd) break;
      lagMax = Math.max(lagMax, now - intended);
      const id = k;
      pending.set(id, [intended, nowMs()]);
      sessions[k % sessions.length].send(`{"type":"cmd","id":${id},"line":"${opts.command}"}`);
      if (intended >= windowStart) sent++;
      k++;
    }
    if (start + k * interval >= windowEnd) {
      // The last replies: wait up to 2 s for them.
      setTimeout(resolve, 2000);
      return;
    }
    setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
});

const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
function summary(xs) {
  xs.sort((a, b) => a - b);
  const pct = (p) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : null);
  return {
    p50: round(pct(50)),
    p90: round(pct(90)),
    p99: round(pct(99)),
    p999: round(pct(99.9)),
    max: round(xs.length ? xs[xs.length - 1] : null),
  };
}
console.log(
  JSON.stringify({
    tool: 'crosscheck-rtt (node ' + process.version + ', ws)',
    players: opts.players,
    rate_requested: opts.rate,
    rate_achieved: sent / opts.duration,
    replies_in_window: replies,
    missing: sent - replies,
    errors,
    send_lag_ms_max: round(lagMax),
    latency_ms: summary(latencies),
    from_actual_send_ms: summary(serviceTimes),
  }),
);
for (const ws of sessions) ws.terminate();
process.exit(0);
