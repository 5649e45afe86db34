/** `weft control-plane --config DIR`: serve xDS from Istio configuration until SIGTERM/SIGINT. */
import { createLogger, setLogLevel } from '../core/logger.ts';
import type { LogLevel } from '../core/logger.ts';
import { ControlPlane } from '../control/control-plane.ts';

const log = createLogger('weft');

export async function runControlPlane(opts: {
  config: string[];
  host: string;
  xdsPort: number;
  debugPort: number;
  logLevel: LogLevel;
}): Promise<number> {
  setLogLevel(opts.logLevel);
  const cp = new ControlPlane({
    configPaths: opts.config,
    host: opts.host,
    xdsPort: opts.xdsPort,
    debugPort: opts.debugPort,
  });
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { reason: why });
    cp.stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error('stop failed', { error: String(err) });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await cp.start();
    return 0;
  } catch (err) {
    process.stderr.write(`weft: control plane failed to start: ${(err as Error).message}\n`);
    await cp.stop().catch(() => undefined);
    return 1;
  }
}
