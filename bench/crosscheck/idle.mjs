// An independent check of loadgen's `idle` figure: the server's memory per
// held session, from a client that shares no code with loadgen (Node.js and
// the `ws` package).
//
// Reads the server's resident memory (/proc/<pid>/status, VmRSS), opens N
// guest sessions, places session k in grid room (k mod W, k div W mod H)
// as loadgen does (`--grid-width 0`: all stay in the start room), holds
// them, silent, for --hold seconds, reads the memory again, and prints one
// JSON line with the growth per session.
//
//   node idle.mjs --target 127.0.0.1:4000 --server-pid PID --players 15000 \
//                 --hold 15 [--source-ips 20] [--grid-width 100 --grid-height 100]

import { readFileSync } from 'node:fs';
import { openAll, options } from './common.mjs';

const opts = options(
  {
    target: '127.0.0.1:4000',
    'server-pid': 0,
    players: 15000,
    hold: 15,
    'source-ips': 20,
    'grid-width': 100,
    'grid-height': 100,
  },
  'idle.mjs',
);
if (!opts['server-pid']) {
  console.error('idle.mjs: --server-pid is required (the server whose memory is read)');
  process.exit(2);
}
const rssKiB = () => {
  const status = readFileSync(`/proc/${opts['server-pid']}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
};

const before = rssKiB();
const [w, h] = [opts['grid-width'], opts['grid-height']];
const place = (k) => (w > 0 ? `grid:${k % w}_${Math.floor(k / w) % h}` : null);
const sessions = await openAll(opts, place);
let dropped = 0;
for (const ws of sessions) ws.on('close', () => dropped++);
await new Promise((resolve) => setTimeout(resolve, opts.hold * 1000));
const after = rssKiB();
console.log(
  JSON.stringify({
    tool: `crosscheck-idle (node ${process.version}, ws)`,
    sessions: opts.players,
    dropped,
    rss_before_kib: before,
    rss_after_kib: after,
    rss_per_session_bytes: Math.round(((after - before) * 1024) / opts.players),
  }),
);
for (const ws of sessions) ws.terminate();
process.exit(0);
