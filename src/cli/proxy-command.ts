/**
 * `weft proxy`: from an Envoy bootstrap file (`--bootstrap FILE`), or as a mesh sidecar or gateway that
 * builds its own bootstrap from its identity, like istio-agent (`--xds-address HOST:PORT --name ...`).
 * Starts, and stops gracefully on SIGTERM/SIGINT or /quitquitquit.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError } from '../core/errors.ts';
import { createLogger, setLogLevel } from '../core/logger.ts';
import type { LogLevel } from '../core/logger.ts';
import {
  AGENT_DEFAULTS,
  buildAgentBootstrap,
  parseLabels,
  parseLocality,
} from '../proxy/bootstrap/agent-bootstrap.ts';
import { compileBootstrap, loadBootstrap } from '../proxy/bootstrap/load.ts';
import type { BootstrapConfig } from '../proxy/bootstrap/types.ts';
import { ProxyServer } from '../proxy/server.ts';
import type { ProxyAgentOptions } from '../proxy/server.ts';
import { parseIstioDurationMs } from '../config/duration.ts';
import { TLS_MODE_LABEL } from '../api/istio/mesh-names.ts';

const log = createLogger('weft');

export interface ProxyCommandOptions {
  bootstrap?: string;
  xdsAddress?: string;
  type: 'sidecar' | 'router';
  name?: string;
  namespace: string;
  ip?: string;
  labels?: string;
  metadata: string[];
  serviceAccount?: string;
  locality?: string;
  workloadName?: string;
  delta?: boolean;
  sotw?: boolean;
  interceptionMode: 'NONE' | 'REDIRECT';
  adminPort: number;
  prometheusPort: number;
  healthPort: number;
  printBootstrap?: boolean;
  drainTimeS: number;
  logLevel: LogLevel;
  caTokenFile?: string;
  caAddress?: string;
  certTtl?: string;
}

const port = (v: string): number => Number(v);

export function addProxyCommand(program: Command): void {
  program
    .command('proxy')
    .description(
      'run the Weft proxy: from an Envoy v3 bootstrap file (YAML or JSON), or as a mesh sidecar/gateway ' +
        'that builds its bootstrap from its identity and takes its configuration from the control plane',
    )
    .option('-c, --bootstrap <file>', 'Envoy v3 bootstrap file')
    .option(
      '--xds-address <host:port>',
      'the control plane (ADS) to connect to, building the bootstrap itself',
    )
    .addOption(
      new Option('--type <type>', 'what the proxy is').choices(['sidecar', 'router']).default('sidecar'),
    )
    .option('--name <name>', 'the workload instance (pod) name')
    .option('--namespace <namespace>', 'the namespace', 'default')
    .option('--ip <ip>', "the workload's IP (default: this machine's first non-internal address)")
    .option('--labels <k=v,...>', "the workload's labels")
    .option(
      '--metadata <k=v,...>',
      'more node metadata (repeatable), e.g. WEFT_OUTBOUND_PORT=15001',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--service-account <name>', "the workload's service account", AGENT_DEFAULTS.serviceAccount)
    .option('--locality <region/zone/subzone>', "the workload's locality")
    .option('--workload-name <name>', 'the workload (deployment) name (default: --name)')
    .option('--delta', 'use incremental xDS (DELTA_GRPC); the default, as in Istio since 1.22')
    .option('--sotw', 'use state-of-the-world xDS (GRPC) instead of incremental')
    .addOption(
      new Option('--interception-mode <mode>', 'how traffic reaches the proxy (Istio INTERCEPTION_MODE)')
        .choices(['NONE', 'REDIRECT'])
        .default(AGENT_DEFAULTS.interceptionMode),
    )
    .addOption(
      new Option('--admin-port <port>', 'admin port').default(AGENT_DEFAULTS.adminPort).argParser(port),
    )
    .addOption(
      new Option('--prometheus-port <port>', 'Prometheus stats port (0: none; stats stay on the admin port)')
        .default(AGENT_DEFAULTS.prometheusPort)
        .argParser(port),
    )
    .addOption(
      new Option(
        '--health-port <port>',
        'readiness (/healthz/ready) port (0: none; the admin port has /ready)',
      )
        .default(AGENT_DEFAULTS.healthPort)
        .argParser(port),
    )
    .option(
      '--ca-token-file <file>',
      "the workload's bootstrap token (weft ca-token): enables its certificate agent and mTLS",
    )
    .option('--ca-address <host:port>', "the CA's gRPC address (default: --xds-address)")
    .option('--cert-ttl <duration>', 'requested certificate lifetime (Go duration; default: the CA decides)')
    .option('--print-bootstrap', 'print the bootstrap (as JSON) and exit')
    .addOption(new Option('--drain-time-s <seconds>', 'drain period on SIGTERM').default(5).argParser(Number))
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .action(async (opts: ProxyCommandOptions) => {
      process.exitCode = await runProxy(opts);
    });
}

/** The bootstrap JSON that agent mode (--xds-address) builds from the options. */
export function agentBootstrapJson(opts: ProxyCommandOptions): Record<string, unknown> {
  if (!opts.xdsAddress)
    throw new ConfigError('', 'either --bootstrap FILE or --xds-address HOST:PORT is required');
  if (!opts.name) throw new ConfigError('--name', 'required with --xds-address');
  const labels = parseLabels(opts.labels ?? '');
  // Istio's mark of a workload with a sidecar that speaks mTLS: callers pick their mTLS socket by it.
  if (opts.caTokenFile !== undefined) labels[TLS_MODE_LABEL] ??= 'istio';
  return buildAgentBootstrap({
    xdsAddress: opts.xdsAddress,
    type: opts.type,
    name: opts.name,
    namespace: opts.namespace,
    ...(opts.ip ? { ip: opts.ip } : {}),
    labels,
    metadata: Object.assign({}, ...(opts.metadata ?? []).map((m) => parseLabels(m, '--metadata'))) as Record<
      string,
      string
    >,
    ...(opts.serviceAccount ? { serviceAccount: opts.serviceAccount } : {}),
    ...(opts.locality ? { locality: parseLocality(opts.locality) } : {}),
    ...(opts.workloadName ? { workloadName: opts.workloadName } : {}),
    delta: opts.sotw !== true,
    interceptionMode: opts.interceptionMode,
    adminPort: opts.adminPort,
    prometheusPort: opts.prometheusPort,
    healthPort: opts.healthPort,
  });
}

function agentOptions(opts: ProxyCommandOptions, tokenFile: string): ProxyAgentOptions {
  const caAddress = opts.caAddress ?? opts.xdsAddress;
  if (caAddress === undefined)
    throw new ConfigError('--ca-address', 'required with --ca-token-file when there is no --xds-address');
  let ttlSeconds = 0;
  if (opts.certTtl !== undefined) {
    const ms = parseIstioDurationMs(opts.certTtl);
    if (ms === undefined || ms < 1000)
      throw new ConfigError(
        '--cert-ttl',
        `${JSON.stringify(opts.certTtl)} is not a Go duration of at least 1s`,
      );
    ttlSeconds = Math.round(ms / 1000);
  }
  return { caAddress, tokenFile, ttlSeconds };
}

async function bootstrapFor(opts: ProxyCommandOptions): Promise<{ config: BootstrapConfig; json: unknown }> {
  if (opts.bootstrap) {
    if (opts.xdsAddress) throw new ConfigError('', '--bootstrap and --xds-address exclude each other');
    const config = await loadBootstrap(opts.bootstrap);
    return { config, json: config.normalized };
  }
  const json = agentBootstrapJson(opts);
  return { config: compileBootstrap(json, '(built from the command line)'), json };
}

export async function runProxy(opts: ProxyCommandOptions): Promise<number> {
  setLogLevel(opts.logLevel);
  let server: ProxyServer;
  const source = opts.bootstrap ?? '(built from the command line)';
  try {
    const { config: bootstrap, json } = await bootstrapFor(opts);
    if (opts.printBootstrap) {
      process.stdout.write(JSON.stringify(json, null, 2) + '\n');
      return 0;
    }
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('draining', { reason: why, drainSeconds: opts.drainTimeS });
      server
        .stop(opts.drainTimeS * 1000)
        .then(() => process.exit(0))
        .catch((err: unknown) => {
          log.error('stop failed', { error: String(err) });
          process.exit(1);
        });
    };
    server = new ProxyServer(bootstrap, {
      drainMs: opts.drainTimeS * 1000,
      onQuit: () => stop('quitquitquit'),
      ...(opts.caTokenFile !== undefined ? { agent: agentOptions(opts, opts.caTokenFile) } : {}),
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // As Envoy: SIGUSR1 reopens the access log files, after logrotate has moved them.
    const running = server;
    process.on('SIGUSR1', () => void running.telemetry.accessLogs.reopen());
    await server.start();
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        opts.bootstrap ? `weft: invalid bootstrap ${source}: ${err.message}\n` : `weft: ${err.message}\n`,
      );
      return 1;
    }
    process.stderr.write(`weft: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
