/**
 * The control plane's debug and monitoring HTTP server (istiod's :15014): readiness, the sync state of every
 * connected proxy, the configuration generated for one proxy, open streams, push statistics, and /metrics.
 */
import http from 'node:http';
import { memoryReport } from './memory.ts';
import { formatDiagnostic } from '../../config/diagnostic.ts';
import { createLogger } from '../../core/logger.ts';
import { listenOn } from '../../core/listen.ts';
import type { Logger } from '../../core/logger.ts';
import type { Diagnostic } from '../../config/diagnostic.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import { configDump } from './config-dump.ts';
import { controlPlaneMetrics } from './metrics.ts';
import type { ControlPlaneMetrics } from './metrics.ts';
import { formatSyncTable } from './sync-table.ts';

export interface DebugServerOptions {
  ads: AdsServer;
  /**
   * What the configuration's loading and translation said (schema errors, last valid versions kept, fields
   * Weft does not implement), for /debug/config_diagnostics. Default: none.
   */
  diagnostics?: () => { configVersion: number; diagnostics: readonly Diagnostic[] };
  /** The CA whose issuance /metrics reports, read at each scrape (it may be replaced). Default: none. */
  authority?: () => CertificateAuthority | undefined;
  /** /ready answers 503 while this says false (e.g. before the first config snapshot). Default: always ready. */
  ready?: () => boolean;
  logger?: Logger;
}

const ENDPOINTS: Record<string, string> = {
  '/ready': 'readiness: 200 when the control plane serves',
  '/debug/syncz':
    'per proxy and xDS type: subscribed names, sent/ACKed version, SYNCED|STALE|NACK (?format=table)',
  '/debug/config_dump?proxyID=ID':
    'the configuration generated for a connected proxy, shaped like Envoy /config_dump',
  '/debug/connections': 'open ADS streams',
  '/debug/push_status': 'push counters and the last push round',
  '/debug/memory':
    "the control plane's memory: process RSS, V8 heap (per space), external and array buffers, malloc'd",
  '/debug/config_diagnostics':
    'problems in the configuration: errors (resource not served, or its last valid version kept) and unsupported fields (?severity=error|warning|info, ?format=text)',
  '/metrics': 'Prometheus metrics',
};

const SEVERITIES = ['error', 'warning', 'info'];

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class DebugServer {
  readonly #ads: AdsServer;
  readonly #ready: () => boolean;
  readonly #diagnostics: NonNullable<DebugServerOptions['diagnostics']>;
  readonly #logger: Logger;
  readonly #metrics: ControlPlaneMetrics;
  readonly #server: http.Server;

  constructor(options: DebugServerOptions) {
    this.#ads = options.ads;
    this.#ready = options.ready ?? (() => true);
    this.#diagnostics = options.diagnostics ?? (() => ({ configVersion: 0, diagnostics: [] }));
    this.#logger = options.logger ?? createLogger('debug');
    this.#metrics = controlPlaneMetrics(options.ads, options.authority);
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) this.#logger.error('debug request failed', { url: req.url, error: String(err) });
        if (!res.headersSent) sendJson(res, status, { error: (err as Error).message });
        else res.destroy();
      });
    });
  }

  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    const bound = await listenOn(this.#server, port, host);
    this.#logger.info('debug server listening', { address: host, port: bound });
    return bound;
  }

  close(): Promise<void> {
    this.#metrics.close();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://debug');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new HttpError(405, `${req.method} is not allowed`);
    switch (url.pathname) {
      case '/':
      case '/debug':
        sendJson(res, 200, { endpoints: ENDPOINTS });
        return;
      case '/ready':
        if (this.#ready()) sendText(res, 200, 'ready\n');
        else sendText(res, 503, 'not ready\n');
        return;
      case '/debug/syncz': {
        const statuses = this.#ads.status();
        if (url.searchParams.get('format') === 'table') sendText(res, 200, formatSyncTable(statuses));
        else sendJson(res, 200, statuses);
        return;
      }
      case '/debug/config_dump': {
        const proxyId = url.searchParams.get('proxyID') ?? url.searchParams.get('proxyId');
        if (!proxyId) throw new HttpError(400, 'the proxyID query parameter is required');
        const generated = this.#ads.generatedConfig(proxyId);
        if (!generated) throw new HttpError(404, `proxy ${JSON.stringify(proxyId)} is not connected`);
        sendJson(res, 200, configDump(generated));
        return;
      }
      case '/debug/connections':
        sendJson(res, 200, this.#ads.connections());
        return;
      case '/debug/push_status':
        sendJson(res, 200, this.#ads.stats());
        return;
      case '/debug/memory':
        sendJson(res, 200, memoryReport());
        return;
      case '/debug/config_diagnostics': {
        const severity = url.searchParams.get('severity');
        if (severity !== null && !SEVERITIES.includes(severity))
          throw new HttpError(400, `severity must be one of ${SEVERITIES.join(', ')}`);
        const { configVersion, diagnostics } = this.#diagnostics();
        const list = severity === null ? diagnostics : diagnostics.filter((d) => d.severity === severity);
        if (url.searchParams.get('format') === 'text')
          sendText(res, 200, list.map((d) => `${formatDiagnostic(d)}\n`).join(''));
        else
          sendJson(res, 200, {
            configVersion,
            counts: Object.fromEntries(
              SEVERITIES.map((s) => [s, diagnostics.filter((d) => d.severity === s).length]),
            ),
            diagnostics: list,
          });
        return;
      }
      case '/metrics':
        sendText(res, 200, await this.#metrics.render(), this.#metrics.contentType);
        return;
      default:
        throw new HttpError(404, `no such endpoint ${JSON.stringify(url.pathname)}; see /debug`);
    }
  }
}

function sendText(
  res: http.ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  sendText(res, status, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
}
