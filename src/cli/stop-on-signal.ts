/** Long-running commands stop once on SIGTERM or SIGINT: `stop` runs, then the process exits 0 (1 if it failed). */
import type { Logger } from '../core/logger.ts';

export function stopOnSignal(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { reason: signal });
    stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error('stop failed', { error: String(err) });
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
