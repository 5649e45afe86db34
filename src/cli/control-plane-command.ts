/** `weft control-plane --config DIR`: serve xDS from Istio configuration until SIGTERM/SIGINT. */
import v8 from 'node:v8';
import { createLogger, setLogLevel } from '../core/logger.ts';
import type { LogLevel } from '../core/logger.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { stopOnSignal } from './stop-on-signal.ts';
import { parseIstioDurationMs } from '../config/duration.ts';
import type { MeshConfig } from '../api/istio/mesh-config.ts';
import { loadMeshConfigFile, MeshConfigError } from '../control/model/mesh-config-file.ts';
import { parsePrices } from '../cost/model.ts';
import type { CostPrices } from '../cost/model.ts';

const log = createLogger('weft');

export interface ControlPlaneCommandOptions {
  config: string[];
  host: string;
  xdsPort: number;
  debugPort: number;
  /** The dashboard's HTTP port (0 = no dashboard). */
  dashboardPort: number;
  /** A Prometheus the dashboard reads its golden signals from (else its own collector's). */
  dashboardPrometheusUrl?: string;
  /** `zone=0.01,region=0.02`: the prices of cross-zone and cross-region traffic, USD per GB. */
  costPrices?: string;
  logLevel: LogLevel;
  stateDir: string;
  ca: boolean;
  caPluginDir?: string;
  trustDomain: string;
  workloadCertTtl: string;
  extraTrustedRoots?: string;
  /** Istio MeshConfig YAML (telemetry providers and defaults, rootNamespace, trustDomain). */
  meshConfig?: string;
}

/** --trust-domain's default: a MeshConfig trustDomain replaces it, an explicit other value must agree. */
const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/**
 * How much V8 lets the old generation grow past what the last full GC left, in percent. V8 sizes the growth for
 * its ~4 GB default limit (up to 4× the live heap), so the control plane's garbage — previous snapshots, held
 * sets, encoded responses — piled up to ~550 MB over a ~280 MB live heap under steady changes. At 20% the peak
 * at 1,000 proxies fell by ~100 MB for no measurable CPU (ARCHITECTURE.md, the control plane's bench table).
 * `--heap-growing-percent` given to Node (NODE_OPTIONS or the command line) wins.
 */
const HEAP_GROWING_PERCENT = 20;

function limitHeapGrowth(): void {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) =>
    /heap[-_]growing[-_]percent/.test(a),
  );
  // V8 reads this flag at every full GC, so setting it after start-up takes effect.
  if (!given) v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

export async function runControlPlane(opts: ControlPlaneCommandOptions): Promise<number> {
  setLogLevel(opts.logLevel);
  limitHeapGrowth();
  const ttl = parseIstioDurationMs(opts.workloadCertTtl);
  if (ttl === undefined || ttl < 60_000) {
    process.stderr.write(
      `weft: --workload-cert-ttl ${JSON.stringify(opts.workloadCertTtl)}: expected a Go duration of at least 1m\n`,
    );
    return 1;
  }
  if (opts.dashboardPrometheusUrl !== undefined && !/^https?:\/\/[^/\s]+/.test(opts.dashboardPrometheusUrl)) {
    process.stderr.write(
      `weft: --dashboard-prometheus-url ${JSON.stringify(opts.dashboardPrometheusUrl)}: expected http(s)://host:port\n`,
    );
    return 1;
  }
  let costPrices: CostPrices | undefined;
  if (opts.costPrices !== undefined) {
    try {
      costPrices = parsePrices(opts.costPrices);
    } catch (e) {
      process.stderr.write(`weft: --cost-prices: ${(e as Error).message}\n`);
      return 1;
    }
  }
  let meshConfig: MeshConfig = {};
  if (opts.meshConfig !== undefined) {
    try {
      meshConfig = loadMeshConfigFile(opts.meshConfig);
    } catch (err) {
      if (!(err instanceof MeshConfigError)) throw err;
      process.stderr.write(`weft: control plane refuses to start: ${err.message}\n`);
      return 1;
    }
  }
  let trustDomain = opts.trustDomain;
  if (meshConfig.trustDomain !== undefined && meshConfig.trustDomain !== trustDomain) {
    if (trustDomain !== DEFAULT_TRUST_DOMAIN) {
      process.stderr.write(
        `weft: --trust-domain ${trustDomain} and the mesh config's trustDomain ${meshConfig.trustDomain} differ\n`,
      );
      return 1;
    }
    trustDomain = meshConfig.trustDomain;
  }
  const cp = new ControlPlane({
    meshConfig,
    configPaths: opts.config,
    host: opts.host,
    xdsPort: opts.xdsPort,
    debugPort: opts.debugPort,
    ...(opts.ca
      ? {
          stateDir: opts.stateDir,
          caPluginDir: opts.caPluginDir,
          trustDomain,
          workloadCertTtlMs: ttl,
          extraTrustedRootsFile: opts.extraTrustedRoots,
        }
      : {}),
  });
  let dashboard: { stop(): Promise<void> } | undefined;
  stopOnSignal(log, async () => {
    await dashboard?.stop();
    await cp.stop();
  });
  try {
    await cp.start();
    if (opts.dashboardPort !== 0) {
      // Loaded only when served: a control plane without a dashboard pays nothing for it.
      const { startDashboard } = await import('../dashboard/server.ts');
      dashboard = await startDashboard({
        ads: cp.ads,
        configPaths: opts.config,
        host: opts.host,
        port: opts.dashboardPort,
        ...(opts.dashboardPrometheusUrl ? { prometheusUrl: opts.dashboardPrometheusUrl } : {}),
        ...(costPrices ? { costPrices } : {}),
      });
    }
    return 0;
  } catch (err) {
    process.stderr.write(`weft: control plane failed to start: ${(err as Error).message}\n`);
    await dashboard?.stop().catch(() => undefined);
    await cp.stop().catch(() => undefined);
    return 1;
  }
}
