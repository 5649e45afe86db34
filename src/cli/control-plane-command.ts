/** `weft control-plane --config DIR`: serve xDS from Istio configuration until SIGTERM/SIGINT. */
import { createLogger, setLogLevel } from '../core/logger.ts';
import type { LogLevel } from '../core/logger.ts';
import { ControlPlane } from '../control/control-plane.ts';
import { stopOnSignal } from './stop-on-signal.ts';

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
  stopOnSignal(log, () => cp.stop());
  try {
    await cp.start();
    return 0;
  } catch (err) {
    process.stderr.write(`weft: control plane failed to start: ${(err as Error).message}\n`);
    await cp.stop().catch(() => undefined);
    return 1;
  }
}
