#!/usr/bin/env node
/**
 * Steady load on the shop, so the dashboard has something to show:
 *
 *   node examples/shop/traffic.mjs [--url http://127.0.0.1:8080/] [--rps 10] [--duration 60]
 *                                  [--users alice,bob,carol,dave] [--header 'x-canary: v3' ...]
 *
 * Sends --rps requests a second at a fixed pace (whether or not earlier ones have answered), for
 * --duration seconds, each as the next customer of --users (the end-user header; --users '' sends
 * none). Every second it prints what completed in that second: status codes, latency, and which
 * reviews version served the page; at the end, the totals.
 */
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080/' },
    rps: { type: 'string', default: '10' },
    duration: { type: 'string', default: '60' },
    users: { type: 'string', default: 'alice,bob,carol,dave' },
    header: { type: 'string', multiple: true, default: [] },
    timeout: { type: 'string', default: '10' },
  },
});

function positive(name, text) {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`traffic: --${name} must be a positive number, got "${text}"\n`);
    process.exit(2);
  }
  return n;
}

const rps = positive('rps', opts.rps);
const durationS = positive('duration', opts.duration);
const timeoutMs = positive('timeout', opts.timeout) * 1000;
const users = opts.users.split(',').filter((u) => u !== '');
const extraHeaders = {};
for (const h of opts.header) {
  const colon = h.indexOf(':');
  if (colon <= 0) {
    process.stderr.write(`traffic: --header must be "name: value", got "${h}"\n`);
    process.exit(2);
  }
  extraHeaders[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
}

/** Outcomes of one period: counts by status (or error) and by reviews version, and latencies. */
function emptyTally() {
  return { statuses: new Map(), versions: new Map(), latencies: [] };
}
const bump = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function describe(tally) {
  const n = tally.latencies.length;
  const sorted = [...tally.latencies].sort((a, b) => a - b);
  const list = (map) =>
    [...map.entries()]
      .sort(([a], [b]) => String(a).localeCompare(String(b)))
      .map(([k, v]) => `${k}×${v}`)
      .join(' ');
  const parts = [`${String(n).padStart(4)} done`, list(tally.statuses) || '-'];
  if (n > 0)
    parts.push(`p50 ${percentile(sorted, 50).toFixed(0)}ms p99 ${percentile(sorted, 99).toFixed(0)}ms`);
  if (tally.versions.size > 0) parts.push(`reviews ${list(tally.versions)}`);
  return parts.join('  ');
}

let second = emptyTally();
const total = emptyTally();
let sent = 0;

async function one(i) {
  const headers = { ...extraHeaders };
  if (users.length > 0) headers['end-user'] = users[i % users.length];
  const started = performance.now();
  let status;
  let version;
  try {
    const res = await fetch(opts.url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    status = res.status;
    try {
      const body = JSON.parse(text);
      version = body?.reviews?.version ?? (body?.reviewsError !== undefined ? 'none' : undefined);
    } catch {
      version = undefined;
    }
  } catch (err) {
    status = err?.name === 'TimeoutError' ? 'timeout' : (err?.cause?.code ?? 'error');
  }
  const ms = performance.now() - started;
  for (const t of [second, total]) {
    bump(t.statuses, status);
    if (version !== undefined) bump(t.versions, version);
    t.latencies.push(ms);
  }
}

const inFlight = new Set();
const startedAt = performance.now();
const intervalMs = 1000 / rps;
const count = Math.round(rps * durationS);

process.stdout.write(`traffic: ${count} requests to ${opts.url} at ${rps}/s for ${durationS}s\n`);

const reporter = setInterval(() => {
  const elapsed = Math.round((performance.now() - startedAt) / 1000);
  process.stdout.write(`${String(elapsed).padStart(4)}s ${describe(second)}\n`);
  second = emptyTally();
}, 1000);

// Each request is scheduled from the start time, not the previous one, so slow answers do not slow the pace.
for (let i = 0; i < count; i++) {
  const due = startedAt + i * intervalMs;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const p = one(i).finally(() => inFlight.delete(p));
  inFlight.add(p);
  sent++;
}
await Promise.all(inFlight);
clearInterval(reporter);
if (second.latencies.length > 0) process.stdout.write(`   +  ${describe(second)}\n`);
process.stdout.write(`total: ${sent} sent, ${describe(total)}\n`);
