/**
 * `weft ratelimit --config PATH...`: the global rate limit service (Envoy's RLS over gRPC, counters in Redis),
 * with limits from the RateLimitPolicy resources in the watched configuration, until SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Diagnostic } from '../config/diagnostic.ts';
import { stopOnSignal } from './stop-on-signal.ts';
import { createLogger, setLogLevel } from '../core/logger.ts';
import type { LogLevel } from '../core/logger.ts';

const log = createLogger('ratelimit');

/** The URL without its password, for logs. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Logs the diagnostics that were not logged last time (a reload must not repeat every warning). */
function diagnosticReporter(
  formatDiagnostic: (d: Diagnostic) => string,
): (diagnostics: readonly Diagnostic[]) => void {
  let reported = new Set<string>();
  return (diagnostics) => {
    const now = new Set<string>();
    for (const d of diagnostics) {
      if (d.severity === 'info') continue;
      const line = formatDiagnostic(d);
      now.add(line);
      if (reported.has(line)) continue;
      if (d.severity === 'error') log.error(line);
      else log.warn(line);
    }
    reported = now;
  };
}

export interface RateLimitCommandOptions {
  config: string[];
  redis: string;
  port: number;
  address: string;
  logLevel: LogLevel;
}

export function addRateLimitCommand(program: Command): void {
  program
    .command('ratelimit')
    .description(
      "run the global rate limit service: Envoy's RLS over gRPC, limits from RateLimitPolicy, counters in Redis",
    )
    .requiredOption(
      '--config <paths...>',
      'YAML files or directories with the RateLimitPolicy resources, watched for changes',
    )
    .option('--redis <url>', 'Redis for the counters, shared by every replica', 'redis://127.0.0.1:6379')
    .addOption(new Option('--port <port>', 'gRPC port (0: any free port)').default(8081).argParser(Number))
    .option('--address <address>', 'address to bind', '0.0.0.0')
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .action(async (opts: RateLimitCommandOptions) => {
      process.exitCode = await runRateLimit(opts);
    });
}

export async function runRateLimit(opts: RateLimitCommandOptions): Promise<number> {
  setLogLevel(opts.logLevel);
  // Loaded on demand: the other commands should not pay for the config loader, gRPC and Redis.
  const [{ formatDiagnostic }, { ConfigWatcher }, { RateLimitServer }] = await Promise.all([
    import('../config/diagnostic.ts'),
    import('../config/watch.ts'),
    import('../ratelimit/service.ts'),
  ]);
  const report = diagnosticReporter(formatDiagnostic);
  // Invalid files never take limits away: the watcher keeps each resource's last valid version.
  const watcher = new ConfigWatcher(opts.config);
  const initial = watcher.start();
  report(watcher.diagnostics);
  const server = new RateLimitServer({ redisUrl: opts.redis, resources: initial.resources, logger: log });
  watcher.on('snapshot', (config, diagnostics) => {
    report(diagnostics);
    server.updatePolicies(config.resources);
  });
  watcher.on('diagnostics', report);
  watcher.on('error', (err) =>
    log.error('config watch failed; enforcing the last configuration', { error: err.message }),
  );

  stopOnSignal(log, async () => {
    watcher.close();
    await server.stop();
  });

  try {
    const port = await server.start({ port: opts.port, address: opts.address });
    log.info('ratelimit ready', {
      address: opts.address,
      port,
      redis: redactedUrl(opts.redis),
      policies: server.policyCount,
    });
    return 0;
  } catch (err) {
    process.stderr.write(`weft: rate limit service failed to start: ${(err as Error).message}\n`);
    watcher.close();
    await server.stop().catch(() => undefined);
    return 1;
  }
}
