/**
 * The admin HTTP server: Envoy's admin endpoints that operators, probes, scrapers and mesh tooling
 * use (/ready, /stats, /stats/prometheus, /clusters, /config_dump, /server_info, /drain_listeners,
 * /quitquitquit). As in Envoy, endpoints that change the server's state require POST. A bad query
 * or a failing target method yields an error response, never an exception.
 */
import { nodeHttp } from '../../core/node-http.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../core/logger.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../stats/prometheus.ts';
import type { RenderOptions, StatsStore } from '../stats/store.ts';
import { renderClustersJson, renderClustersText } from './clusters.ts';
import type { AdminTarget } from './types.ts';

const log = createLogger('admin');

const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';
/** Admin regexes come from operators, but a bound keeps a typo from compiling something huge. */
const MAX_FILTER_LENGTH = 1024;
/** Envoy's server states; /ready reports one of them. */
const SERVER_STATES = new Set(['LIVE', 'DRAINING', 'PRE_INITIALIZING', 'INITIALIZING']);

interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** Runs once the response has been sent (or the client went away). */
  readonly after?: () => void;
  /** The Allow header of a 405. */
  readonly allow?: string;
}

interface Endpoint {
  readonly help: string;
  readonly mutates: boolean;
  handle(query: URLSearchParams, target: AdminTarget, stats: StatsStore): Reply | Promise<Reply>;
}

const text = (status: number, body: string): Reply => ({ status, contentType: TEXT, body });
const json = (value: unknown, pretty: boolean): Reply => ({
  status: 200,
  contentType: JSON_TYPE,
  body: JSON.stringify(value ?? null, null, pretty ? 2 : undefined) + '\n',
});

const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map<string, Endpoint>([
  ['/', { help: 'this help', mutates: false, handle: () => text(200, helpText()) }],
  ['/help', { help: 'this help', mutates: false, handle: () => text(200, helpText()) }],
  [
    '/ready',
    {
      help: 'server state; 200 when LIVE, 503 otherwise',
      mutates: false,
      handle: (_q, target) => {
        if (target.isReady()) return text(200, 'LIVE\n');
        return text(503, notLiveState(target) + '\n');
      },
    },
  ],
  [
    '/server_info',
    {
      help: 'version, state, uptime, node and command line (JSON)',
      mutates: false,
      handle: (_q, target) => json(target.serverInfo(), true),
    },
  ],
  [
    '/config_dump',
    {
      help: 'the running configuration (JSON), endpoints included',
      mutates: false,
      handle: (q, target) => {
        // ?include_eds is accepted: Weft's dump always includes endpoints.
        for (const p of ['resource', 'mask', 'name_regex']) {
          if (q.has(p)) return text(400, `/config_dump?${p} is not supported by Weft\n`);
        }
        return json(target.configDump(), true);
      },
    },
  ],
  [
    '/clusters',
    {
      help: 'upstream clusters and their hosts (?format=json)',
      mutates: false,
      handle: (q, target) => {
        const format = q.get('format') ?? 'text';
        if (format === 'json') return json(renderClustersJson(target.clusters()), true);
        if (format === 'text') return text(200, renderClustersText(target.clusters()));
        return text(400, 'usage: /clusters?format=(text|json)\n');
      },
    },
  ],
  [
    '/certs',
    {
      help: 'TLS certificates in use (JSON)',
      mutates: false,
      handle: (_q, target) => json(target.certs?.() ?? { certificates: [] }, true),
    },
  ],
  [
    '/stats',
    {
      help: 'stats (?filter=REGEX, ?usedonly, ?format=text|json|prometheus)',
      mutates: false,
      handle: (q, _t, stats) => {
        const opts = renderOptions(q);
        if (typeof opts === 'string') return text(400, opts);
        const format = q.get('format') ?? 'text';
        if (format === 'text') return text(200, stats.renderText(opts));
        if (format === 'json') return json(stats.renderJson(opts), false);
        if (format === 'prometheus') {
          return { status: 200, contentType: PROMETHEUS_CONTENT_TYPE, body: stats.renderPrometheus(opts) };
        }
        return text(400, 'usage: /stats?format=(text|json|prometheus)\n');
      },
    },
  ],
  [
    '/stats/prometheus',
    {
      help: 'stats in Prometheus text format (?filter=REGEX, ?usedonly)',
      mutates: false,
      handle: (q, _t, stats) => {
        const opts = renderOptions(q);
        if (typeof opts === 'string') return text(400, opts);
        return { status: 200, contentType: PROMETHEUS_CONTENT_TYPE, body: stats.renderPrometheus(opts) };
      },
    },
  ],
  [
    '/drain_listeners',
    {
      help: 'stop accepting new connections; in-flight requests complete',
      mutates: true,
      handle: async (q, target) => {
        if (q.has('inboundonly')) return text(400, '/drain_listeners?inboundonly is not supported by Weft\n');
        await target.drainListeners();
        return text(200, 'OK\n');
      },
    },
  ],
  [
    '/quitquitquit',
    {
      help: 'drain and exit',
      mutates: true,
      handle: (_q, target) => ({ ...text(200, 'OK\n'), after: () => target.quit() }),
    },
  ],
]);

function helpText(): string {
  const lines = ['admin commands are:'];
  for (const [path, e] of ENDPOINTS) lines.push(`  ${path}${e.mutates ? ' (POST)' : ''}: ${e.help}`);
  return lines.join('\n') + '\n';
}

function notLiveState(target: AdminTarget): string {
  try {
    const state = target.serverInfo().state;
    if (typeof state === 'string' && SERVER_STATES.has(state) && state !== 'LIVE') return state;
  } catch {
    // The state is a nicety for the body; the status code already answers the probe.
  }
  return 'PRE_INITIALIZING';
}

/** Envoy's ?filter= (a regex searched anywhere in the name) and ?usedonly; a string is an error. */
function renderOptions(q: URLSearchParams): RenderOptions | string {
  const usedOnly = q.has('usedonly');
  const source = q.get('filter');
  if (source === null || source === '') return { usedOnly };
  if (source.length > MAX_FILTER_LENGTH) return `filter longer than ${MAX_FILTER_LENGTH} characters\n`;
  try {
    return { usedOnly, filter: new RegExp(source) };
  } catch (err) {
    return `Invalid regex: ${(err as Error).message}\n`;
  }
}

/** The path and query of an origin-form (`/stats?x`) or absolute-form request target; null if unparseable. */
function parseTarget(raw: string): { pathname: string; searchParams: URLSearchParams } | null {
  if (raw.startsWith('/')) {
    const q = raw.indexOf('?');
    return {
      pathname: q < 0 ? raw : raw.slice(0, q),
      searchParams: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
    };
  }
  try {
    return new URL(raw);
  } catch {
    return null;
  }
}

async function route(req: IncomingMessage, target: AdminTarget, stats: StatsStore): Promise<Reply> {
  const url = parseTarget(req.url ?? '/');
  if (url === null) return text(400, 'invalid request target\n');
  const endpoint = ENDPOINTS.get(url.pathname);
  if (endpoint === undefined) return text(404, 'invalid path. ' + helpText());
  const method = req.method ?? 'GET';
  if (endpoint.mutates && method !== 'POST') {
    return { ...text(405, `Method ${method} not allowed, POST required.\n`), allow: 'POST' };
  }
  if (!endpoint.mutates && method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
    return { ...text(405, `Method ${method} not allowed.\n`), allow: 'GET, HEAD, POST' };
  }
  try {
    return await endpoint.handle(url.searchParams, target, stats);
  } catch (err) {
    log.error('admin handler failed', { path: url.pathname, error: String(err) });
    return text(500, `${url.pathname} failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

function send(res: ServerResponse, reply: Reply, method: string | undefined): void {
  if (reply.after !== undefined) {
    const after = reply.after;
    res.once('close', () => {
      try {
        after();
      } catch (err) {
        log.error('admin post-response action failed', { error: String(err) });
      }
    });
  }
  const headers: Record<string, string | number> = {
    'content-type': reply.contentType,
    'cache-control': 'no-cache, max-age=0',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(reply.body),
  };
  if (reply.allow !== undefined) headers.allow = reply.allow;
  res.writeHead(reply.status, headers);
  res.end(method === 'HEAD' ? undefined : reply.body);
}

async function respond(
  req: IncomingMessage,
  res: ServerResponse,
  target: AdminTarget,
  stats: StatsStore,
): Promise<void> {
  let reply: Reply;
  try {
    reply = await route(req, target, stats);
  } catch (err) {
    // route() catches handler failures itself; this is a last line of defence.
    log.error('admin request failed', { error: String(err) });
    reply = text(500, 'internal error\n');
  }
  try {
    send(res, reply, req.method);
  } catch (err) {
    log.error('admin response failed', { error: String(err) });
    res.destroy();
  }
}

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly target: AdminTarget;
  readonly stats: StatsStore;
}

export interface AdminServer {
  /** The bound port (useful when 0 was asked for). */
  readonly port: number;
  close(): Promise<void>;
}

export function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const server = nodeHttp.createServer((req, res) => {
    void respond(req, res, opts.target, opts.stats);
  });
  return new Promise((resolve, reject) => {
    const onListenError = (err: Error): void => reject(err);
    server.once('error', onListenError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onListenError);
      server.on('error', (err) => log.error('admin server error', { error: String(err) }));
      const port = (server.address() as AddressInfo).port;
      log.info('admin listening', { host: opts.host, port });
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
