// An independent check of loadgen's `rtt` figures: the same workload, from a
// client that shares no code with loadgen (Node.js and the `ws` package).
//
// N guest sessions; commands (`look`) at an aggregate open-loop rate, dealt
// to the sessions in turn; each reply timed from the command's intended
// send time (a client that falls behind its schedule counts the lag as
// latency, as loadgen does: coordinated omission corrected), and also from
// the moment the frame was handed to the socket. Prints one JSON line.
//
//   node rtt.mjs --target 127.0.0.1:4000 --players 1000 --rate 2000 \
//                --warmup 3 --duration 10 [--source-ips 4] [--command look]
//
// `scripts/crosscheck.sh` runs it beside loadgen against one server.

import { nowMs, openAll, options, round, schedule, summary } from './common.mjs';

const opts = options(
  { target: '127.0.0.1:4000', players: 1000, rate: 2000, warmup: 3, duration: 10, 'source-ips': 1, command: 'look' },
  'rtt.mjs',
);
const sessions = await openAll(opts);
const pending = new Map(); // id → [intended send time, actual send time] (ms)
const latencies = []; // from the intended send time (CO corrected)
const serviceTimes = []; // from the moment the frame was handed to the socket
let sent = 0;
let replies = 0;
let errors = 0; // replies in the window with ok:false, and socket errors
const start = nowMs() + 100;
const windowStart = start + opts.warmup * 1000;
const windowEnd = windowStart + opts.duration * 1000;
const inWindow = (t) => t >= windowStart && t < windowEnd;

for (const ws of sessions) {
  ws.on('message', (data) => {
    const now = nowMs();
    const frame = JSON.parse(data);
    if (frame.type !== 'reply' || frame.id === undefined) return;
    const times = pending.get(frame.id);
    if (times === undefined) return;
    pending.delete(frame.id);
    const [intended, actual] = times;
    if (inWindow(intended)) {
      replies++;
      if (!frame.ok) errors++;
      latencies.push(now - intended);
      serviceTimes.push(now - actual);
    }
  });
  ws.on('error', () => errors++);
}

const lagMax = await schedule(opts.rate, start, windowEnd, (k, intended) => {
  pending.set(k, [intended, nowMs()]);
  sessions[k % sessions.length].send(`{"type":"cmd","id":${k},"line":"${opts.command}"}`);
  if (inWindow(intended)) sent++;
});

console.log(
  JSON.stringify({
    tool: `crosscheck-rtt (node ${process.version}, ws)`,
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
