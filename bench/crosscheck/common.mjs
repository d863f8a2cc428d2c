// What the cross-check clients share: options, opening guest sessions,
// a clock, and latency percentiles. No code is shared with loadgen.

import WebSocket from 'ws';

/// Parses `--name value` pairs over `defaults`; numbers stay numbers.
export function options(defaults, script) {
  const opts = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts) || argv[i + 1] === undefined) {
      console.error(`${script}: unknown or incomplete option ${argv[i]}`);
      process.exit(2);
    }
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function open(opts, i, place) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${opts.target}/ws`, {
      // 127.0.0.1, 127.0.0.2, …: as loadgen's --source-ips, so that many
      // sessions do not run out of one address's ports.
      localAddress: `127.0.0.${1 + (i % opts['source-ips'])}`,
      perMessageDeflate: false,
    });
    const timer = setTimeout(() => reject(new Error(`session ${i}: not ready in 30 s`)), 30000);
    const fail = (e) => {
      clearTimeout(timer);
      reject(e);
    };
    ws.once('error', fail);
    ws.once('open', () => ws.send(JSON.stringify({ type: 'guest' })));
    const onMessage = (data) => {
      const frame = JSON.parse(data);
      if (frame.type === 'welcome' && place) {
        ws.send(JSON.stringify({ type: 'cmd', id: 'place', line: `goto ${place}` }));
        return;
      }
      if (frame.type === 'welcome' || (frame.type === 'reply' && frame.id === 'place')) {
        if (frame.type === 'reply' && !frame.ok) {
          fail(new Error(`session ${i}: goto ${place} refused: ${data}`));
          return;
        }
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(ws);
        return;
      }
      if (frame.type === 'error') fail(new Error(`session ${i}: ${data}`));
    };
    ws.on('message', onMessage);
  });
}

/// Opens `opts.players` guest sessions, a few hundred at a time; session i
/// goes to `place(i)` (a room id for `goto`) when that is given.
export async function openAll(opts, place = () => null) {
  const sessions = new Array(opts.players);
  let next = 0;
  const worker = async () => {
    while (next < opts.players) {
      const i = next++;
      sessions[i] = await open(opts, i, place(i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(200, opts.players) }, worker));
  return sessions;
}

/// Calls `send(k, intended)` for every k whose intended time
/// (`start + k / rate`) has come, until `end`; resolves 2 s after the last.
export function schedule(rate, start, end, send) {
  const interval = 1000 / rate;
  let k = 0;
  let lagMax = 0;
  return new Promise((resolve) => {
    const tick = () => {
      const now = nowMs();
      for (;;) {
        const intended = start + k * interval;
        if (intended > now || intended >= end) break;
        lagMax = Math.max(lagMax, now - intended);
        send(k, intended);
        k++;
      }
      if (start + k * interval >= end) {
        setTimeout(() => resolve(lagMax), 2000);
        return;
      }
      setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
  });
}

const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);

/// p50/p90/p99/p99.9/max of `xs` (sorted in place), in ms.
export function summary(xs) {
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

export { round };
