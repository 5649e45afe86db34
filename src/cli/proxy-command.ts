/** `weft proxy --bootstrap FILE`: load, start, and stop gracefully on SIGTERM/SIGINT or /quitquitquit. */
import { ConfigError } from '../core/errors.ts';
import { createLogger, setLogLevel } from '../core/logger.ts';
import type { LogLevel } from '../core/logger.ts';
import { loadBootstrap } from '../proxy/bootstrap/load.ts';
import { ProxyServer } from '../proxy/server.ts';

const log = createLogger('weft');

export async function runProxy(opts: {
  bootstrap: string;
  drainTimeS: number;
  logLevel: LogLevel;
}): Promise<number> {
  setLogLevel(opts.logLevel);
  let server: ProxyServer;
  try {
    const bootstrap = await loadBootstrap(opts.bootstrap);
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
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    await server.start();
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`weft: invalid bootstrap ${opts.bootstrap}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`weft: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
