/**
 * The dashboard's HTTP server, run by the control plane (`--dashboard-port`, default 15000): the JSON API
 * under /api/ and the page's static files (bundled by esbuild into dist/dashboard/public/). Read-only: GET
 * and HEAD only.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AdsServer } from '../control/xds/ads-server.ts';
import { createLogger } from '../core/logger.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/logger.ts';
import { handleApi, scrapeTargets } from './api.ts';
import type { DashboardSources } from './api.ts';
import { cachedConfigView } from './config-view.ts';
import { CostView } from './cost-view.ts';
import type { CostPrices } from '../cost/model.ts';
import { PrometheusSignals } from './prometheus-source.ts';
import { StatsCollector } from './stats-collector.ts';

/** From src/dashboard (tests) and dist/dashboard (the build) alike: the build's output. */
export const DEFAULT_STATIC_DIR = path.resolve(import.meta.dirname, '../../dist/dashboard/public');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface DashboardServerOptions {
  sources: DashboardSources;
  staticDir?: string;
  logger?: Logger;
}

export class DashboardServer {
  readonly #sources: DashboardSources;
  readonly #staticDir: string;
  readonly #log: Logger;
  readonly #server: http.Server;

  constructor(opts: DashboardServerOptions) {
    this.#sources = opts.sources;
    this.#staticDir = path.resolve(opts.staticDir ?? DEFAULT_STATIC_DIR);
    this.#log = opts.logger ?? createLogger('dashboard');
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#log.error('dashboard request failed', { url: req.url, error: String(err) });
        if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
        else res.destroy();
      });
    });
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return listenOn(this.#server, port, host);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      const answer = await handleApi(this.#sources, url.pathname, url.searchParams);
      if (answer === undefined) {
        send(res, 404, 'application/json', JSON.stringify({ error: `no such endpoint ${url.pathname}` }));
        return;
      }
      res.setHeader('cache-control', 'no-store');
      send(res, answer.status, 'application/json', JSON.stringify(answer.body), req.method === 'HEAD');
      return;
    }
    this.#static(req, res, url.pathname);
  }

  #static(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    let rel: string;
    try {
      rel = decodeURIComponent(pathname === '/' ? '/index.html' : pathname);
    } catch {
      send(res, 400, 'text/plain', 'bad path\n');
      return;
    }
    const file = path.resolve(this.#staticDir, `.${rel}`);
    const type = CONTENT_TYPES[path.extname(file)];
    if (!file.startsWith(this.#staticDir + path.sep) || type === undefined || rel.includes('\0')) {
      send(res, 404, 'text/plain', 'not found\n');
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        const hint =
          rel === '/index.html' ? ` (the page is built by \`npm run build\` into ${this.#staticDir})` : '';
        send(res, 404, 'text/plain', `not found${hint}\n`);
        return;
      }
      send(res, 200, type, data, req.method === 'HEAD');
    });
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headOnly = false,
): void {
  res.writeHead(status, {
    'content-type': type.includes('charset') || !type.startsWith('text/') ? type : `${type}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
  });
  res.end(headOnly ? undefined : body);
}

export interface Dashboard {
  readonly port: number;
  readonly collector: StatsCollector;
  stop(): Promise<void>;
}

/** Starts the collector and the server beside a running control plane's ADS server. */
export async function startDashboard(opts: {
  ads: Pick<AdsServer, 'status'> & Partial<Pick<AdsServer, 'generatedConfig'>>;
  configPaths: readonly string[];
  port: number;
  host?: string;
  intervalMs?: number;
  staticDir?: string;
  logger?: Logger;
  /** A Prometheus to read the golden signals from (`--dashboard-prometheus-url`); else the collector's. */
  prometheusUrl?: string;
  /** /api/cost's prices when the query names none (default: the cost model's). */
  costPrices?: CostPrices;
}): Promise<Dashboard> {
  const log = opts.logger ?? createLogger('dashboard');
  const collector = new StatsCollector({
    targets: () => scrapeTargets(opts.ads.status()),
    intervalMs: opts.intervalMs,
    logger: log,
  });
  const server = new DashboardServer({
    sources: {
      proxies: () => opts.ads.status(),
      collector,
      ...(opts.prometheusUrl
        ? { signals: new PrometheusSignals({ url: opts.prometheusUrl, collector }) }
        : {}),
      config: cachedConfigView(opts.configPaths),
      cost: new CostView({
        collector,
        ...(opts.ads.generatedConfig ? { generatedConfig: (id) => opts.ads.generatedConfig!(id) } : {}),
        ...(opts.costPrices ? { prices: opts.costPrices } : {}),
      }),
    },
    staticDir: opts.staticDir,
    logger: log,
  });
  const port = await server.listen(opts.port, opts.host);
  collector.start();
  log.info('dashboard ready', {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    ...(opts.prometheusUrl ? { prometheus: opts.prometheusUrl } : {}),
  });
  return {
    port,
    collector,
    async stop() {
      collector.stop();
      await server.close();
    },
  };
}
