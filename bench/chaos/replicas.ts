// The chaos benchmark's upstream replicas, all in one child process (so their work does not share the
// load generator's event loop). Each answers 200 with a 1 KiB body, after `delayMs`, and fails
// `failPercent` of its requests with 503 (chosen by a seeded generator, so runs are comparable).
// GET /__stats reports and POST /__reset clears the per-replica counts.
// Usage: node bench/chaos/replicas.ts '<JSON array of ReplicaSpec>'
import http from 'node:http';

export interface ReplicaSpec {
  readonly name: string;
  readonly port: number;
  /** Percentage of requests answered 503 (0–100). */
  readonly failPercent: number;
  /** Added to every response. */
  readonly delayMs: number;
}

export interface ReplicaCounts {
  requests: number;
  failed: number;
}

/** mulberry32, seeded: the failure pattern is the same in every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function parseReplicaSpecs(text: string): ReplicaSpec[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new Error('expected a JSON array of replica specs');
  return parsed.map((s: unknown, i) => {
    const o = s as Record<string, unknown>;
    const ok =
      typeof o?.name === 'string' &&
      Number.isInteger(o.port) &&
      typeof o.failPercent === 'number' &&
      o.failPercent >= 0 &&
      o.failPercent <= 100 &&
      typeof o.delayMs === 'number' &&
      o.delayMs >= 0;
    if (!ok) throw new Error(`replica ${i}: expected {name, port, failPercent 0-100, delayMs >= 0}`);
    return o as unknown as ReplicaSpec;
  });
}

const body = Buffer.alloc(1024, 'x');
const counts = new Map<string, ReplicaCounts>();

function serve(spec: ReplicaSpec, seed: number): http.Server {
  const random = seeded(seed);
  const mine: ReplicaCounts = { requests: 0, failed: 0 };
  counts.set(spec.name, mine);
  const server = http.createServer((req, res) => {
    if (req.url === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Object.fromEntries(counts)));
      return;
    }
    if (req.url === '/__reset' && req.method === 'POST') {
      for (const c of counts.values()) {
        c.requests = 0;
        c.failed = 0;
      }
      res.writeHead(204);
      res.end();
      return;
    }
    req.resume();
    req.on('end', () => {
      mine.requests++;
      const fail = random() * 100 < spec.failPercent;
      if (fail) mine.failed++;
      const answer = (): void => {
        if (fail) {
          res.writeHead(503, { 'content-length': '0', 'x-replica': spec.name });
          res.end();
        } else {
          res.writeHead(200, { 'content-length': String(body.length), 'x-replica': spec.name });
          res.end(body);
        }
      };
      if (spec.delayMs > 0) setTimeout(answer, spec.delayMs);
      else answer();
    });
  });
  // Pooled proxy connections stay open between runs.
  server.keepAliveTimeout = 120_000;
  server.listen(spec.port, '127.0.0.1');
  return server;
}

if (import.meta.main) {
  const specs = parseReplicaSpecs(process.argv[2] ?? '');
  specs.forEach((spec, i) => serve(spec, 1000 + i));
  process.on('SIGTERM', () => process.exit(0));
}
