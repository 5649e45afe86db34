/** The `weft` command. */
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { CaTokenOptions } from './ca-token-command.ts';
import type { ControlPlaneCommandOptions } from './control-plane-command.ts';
import type { CostOptions } from './cost-command.ts';
import { VERSION } from '../core/version.ts';
import { addProxyCommand } from './proxy-command.ts';
import { addRateLimitCommand } from './ratelimit-command.ts';
import { addUpCommands } from '../up/commands.ts';

function defaultStateDir(): string {
  return process.env.WEFT_STATE_DIR ?? path.join(os.homedir(), '.weft', 'control-plane');
}

const program = new Command()
  .name('weft')
  .description('A light service mesh: Envoy-model sidecar proxy and Istio-compatible control plane')
  .version(VERSION);

addProxyCommand(program);
addRateLimitCommand(program);
addUpCommands(program);

program
  .command('control-plane')
  .description(
    'run the control plane: Istio configuration in, xDS out (like istiod: xDS on 15010, debug on 15014)',
  )
  .requiredOption(
    '--config <path>',
    'Istio YAML file or directory, watched for changes (repeatable)',
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option('--host <address>', 'address to bind', '127.0.0.1')
  .addOption(
    new Option('--xds-port <port>', 'ADS and CA (gRPC, plaintext) port').default(15010).argParser(Number),
  )
  .option(
    '--state-dir <dir>',
    "the CA's state: its root key and the workload token key (0600 files)",
    defaultStateDir(),
  )
  .option('--no-ca', 'run no certificate authority (and generate no mTLS)')
  .option(
    '--ca-plugin-dir <dir>',
    "an operator's CA in Istio's plug-in layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)",
  )
  .option('--trust-domain <domain>', 'the SPIFFE trust domain', 'cluster.local')
  .option(
    '--mesh-config <file>',
    'Istio MeshConfig YAML: telemetry providers and defaults (extensionProviders, defaultProviders, accessLogFile, ...), rootNamespace, trustDomain',
  )
  .option('--workload-cert-ttl <duration>', 'lifetime of workload certificates (Go duration)', '24h')
  .option(
    '--extra-trusted-roots <file>',
    'PEM roots every workload trusts beside the CA root (the overlap of a root rotation)',
  )
  .addOption(
    new Option('--debug-port <port>', 'debug and monitoring HTTP port').default(15014).argParser(Number),
  )
  .addOption(
    // Off unless asked for (weft up asks): 15000 is also the sidecar's default admin port.
    new Option('--dashboard-port <port>', 'serve the Weft dashboard (HTTP) on this port (default: off)')
      .default(0)
      .argParser(Number),
  )
  .option(
    '--dashboard-prometheus-url <url>',
    "read the dashboard's traffic signals from this Prometheus (default: the control plane's own collector)",
  )
  .option(
    '--cost-prices <prices>',
    'USD per GB for the dashboard and weft cost: zone=X (charged to each side of a zone crossing), ' +
      'region=Y (default zone=0.01,region=0.02)',
  )
  .addOption(
    new Option('--log-level <level>', 'log level')
      .choices(['debug', 'info', 'warn', 'error'])
      .default('info'),
  )
  .action(async (opts: ControlPlaneCommandOptions) => {
    const { runControlPlane } = await import('./control-plane-command.ts');
    process.exitCode = await runControlPlane(opts);
  });

program
  .command('ca-token')
  .description(
    "mint a workload's bootstrap token (proves its identity to the CA) from the control plane's state dir",
  )
  .requiredOption('--service-account <name>', "the workload's service account")
  .option('--namespace <namespace>', "the workload's namespace", 'default')
  .option('--state-dir <dir>', "the control plane's state dir", defaultStateDir())
  .option('--ttl <duration>', 'how long the token is valid (Go duration)', '8760h')
  .option('-o, --output <file>', 'write the token to this file (0600) instead of stdout')
  .action(async (opts: CaTokenOptions) => {
    const { runCaToken } = await import('./ca-token-command.ts');
    process.exitCode = runCaToken(opts);
  });

program
  .command('analyze')
  .description('check Istio configuration (files or directories): schema errors and semantic problems')
  .argument('<paths...>', 'YAML/JSON files or directories (searched recursively)')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
  .option(
    '--context <path>',
    'configuration that exists but is not analyzed, used to resolve references (repeatable)',
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .action(async (paths: string[], opts: { output: 'text' | 'json'; context: string[] }) => {
    // Loaded on demand: the proxy command should not pay for the config loader and its schemas.
    const { runAnalyze } = await import('./analyze-command.ts');
    process.exitCode = runAnalyze(paths, opts);
  });

program
  .command('proxy-status')
  .description("the connected proxies and each one's xDS sync state (SYNCED / STALE / NACK) per type")
  .option('--control-plane <url>', "the control plane's debug endpoint", 'http://127.0.0.1:15014')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .action(async (opts: { controlPlane: string; output: 'table' | 'json' }) => {
    const { runProxyStatus } = await import('./proxy-status-command.ts');
    process.exitCode = await runProxyStatus(opts);
  });

program
  .command('proxy-config')
  .description("one connected proxy's generated listeners, routes, clusters or endpoints")
  .argument('<kind>', 'what to show: listeners, routes, clusters or endpoints')
  .argument('<proxy>', 'the proxy: NAME.NAMESPACE or its node id')
  .option('--control-plane <url>', "the control plane's debug endpoint", 'http://127.0.0.1:15014')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .action(async (kind: string, proxy: string, opts: { controlPlane: string; output: 'table' | 'json' }) => {
    const { runProxyConfig } = await import('./proxy-config-command.ts');
    process.exitCode = await runProxyConfig(kind, proxy, opts);
  });

program
  .command('cost')
  .description(
    'cross-zone and cross-region traffic per service edge and its estimated monthly cost, from the dashboard',
  )
  .argument('[dir]', "a mesh directory: read the dashboard's port from DIR/.weft/run.json")
  .option('--dashboard <url>', 'the dashboard (default: http://127.0.0.1:15000)')
  .option('--prices <prices>', 'USD per GB: zone=EACH_SIDE,region=ONCE (default zone=0.01,region=0.02)')
  .option('--window <seconds>', "the window priced (default: the dashboard's whole retention, 15 min)")
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .action(async (dir: string | undefined, opts: CostOptions) => {
    const { runCost } = await import('./cost-command.ts');
    process.exitCode = await runCost(dir, opts);
  });

await program.parseAsync(process.argv);
