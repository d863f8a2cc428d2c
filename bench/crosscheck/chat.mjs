// An independent check of loadgen's `chat` figures: the same workload, from
// a client that shares no code with loadgen (Node.js and the `ws` package).
//
// N guest sessions spread evenly over R rooms of the generated grid (room r
// is grid:(r mod 100)_(r div 100), as loadgen places them); says at an
// aggregate open-loop rate, dealt to the players in turn; every other player
// in the speaker's room times the say's delivery from its intended send
// time (coordinated omission corrected, as loadgen does). Prints one JSON
// line: says sent, deliveries expected and received, latency percentiles.
//
//   node chat.mjs --target 127.0.0.1:4000 --players 1000 --rooms 10 \
//                 --rate 100 --warmup 3 --duration 10 [--source-ips 4]
//
// The server must have the grid world (`--world grid:100x100`).

import { nowMs, openAll, options, round, schedule, summary } from './common.mjs';

const opts = options(
  { target: '127.0.0.1:4000', players: 1000, rooms: 10, rate: 100, warmup: 3, duration: 10, 'source-ips': 1 },
  'chat.mjs',
);
const roomOf = (i) => i % opts.rooms;
const place = (i) => `grid:${roomOf(i) % 100}_${Math.floor(roomOf(i) / 100)}`;
const sessions = await openAll(opts, place);
const roomSize = new Array(opts.rooms).fill(0);
for (let i = 0; i < opts.players; i++) roomSize[roomOf(i)]++;

const start = nowMs() + 100;
const windowStart = start + opts.warmup * 1000;
const windowEnd = windowStart + opts.duration * 1000;
const inWindow = (t) => t >= windowStart && t < windowEnd;
const intendedOf = new Map(); // say number → intended send time (ms)
const latencies = [];
let says = 0;
let expected = 0;
let errors = 0;

for (const ws of sessions) {
  ws.on('message', (data) => {
    const now = nowMs();
    const frame = JSON.parse(data);
    if (frame.type === 'error' || (frame.type === 'reply' && !frame.ok)) errors++;
    if (frame.type !== 'event' || frame.kind !== 'say') return;
    const m = /cc(\d+)/.exec(frame.text);
    if (!m) return;
    const intended = intendedOf.get(Number(m[1]));
    if (intended !== undefined && inWindow(intended)) latencies.push(now - intended);
  });
  ws.on('error', () => errors++);
}

const lagMax = await schedule(opts.rate, start, windowEnd, (k, intended) => {
  const speaker = k % sessions.length;
  intendedOf.set(k, intended);
  sessions[speaker].send(`{"type":"cmd","line":"say cc${k}"}`);
  if (inWindow(intended)) {
    says++;
    expected += roomSize[roomOf(speaker)] - 1;
  }
});

console.log(
  JSON.stringify({
    tool: `crosscheck-chat (node ${process.version}, ws)`,
    players: opts.players,
    rooms: opts.rooms,
    rate_requested: opts.rate,
    rate_achieved: says / opts.duration,
    deliveries_expected: expected,
    deliveries_received: latencies.length,
    missing: expected - latencies.length,
    errors,
    send_lag_ms_max: round(lagMax),
    delivery_ms: summary(latencies),
  }),
);
for (const ws of sessions) ws.terminate();
process.exit(0);
