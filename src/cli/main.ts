/** The `weft` command. */
import { Command, Option } from 'commander';
import { VERSION } from '../core/version.ts';
import { runProxy } from './proxy-command.ts';

const program = new Command()
  .name('weft')
  .description('A light service mesh: Envoy-model sidecar proxy and Istio-compatible control plane')
  .version(VERSION);

program
  .command('proxy')
  .description('run the Weft proxy from an Envoy v3 bootstrap file (YAML or JSON)')
  .requiredOption('-c, --bootstrap <file>', 'Envoy v3 bootstrap file')
  .addOption(new Option('--drain-time-s <seconds>', 'drain period on SIGTERM').default(5).argParser(Number))
  .addOption(
    new Option('--log-level <level>', 'log level')
      .choices(['debug', 'info', 'warn', 'error'])
      .default('info'),
  )
  .action(
    async (opts: {
      bootstrap: string;
      drainTimeS: number;
      logLevel: 'debug' | 'info' | 'warn' | 'error';
    }) => {
      process.exitCode = await runProxy(opts);
    },
  );

await program.parseAsync(process.argv);
