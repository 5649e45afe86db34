/** Access loggers built from `access_log` configs, and the sinks (files, stdout) they share. */
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession, TcpSessionObserver } from '../network/tcp-session.ts';
import type { AccessLogConfig } from './config.ts';

export interface HttpAccessLogger {
  /** Called once when the stream is complete (response finished, reset or aborted). */
  log(stream: HttpStream): void;
}

/** The open sinks of one proxy: one writer per file path, shared by every listener that logs there. */
export class AccessLogSinks {
  /** Flushes what is buffered and closes the files. */
  async close(): Promise<void> {}
}

export function createHttpAccessLoggers(
  configs: readonly AccessLogConfig[],
  _sinks: AccessLogSinks,
): HttpAccessLogger[] {
  if (configs.length > 0) throw new Error('access logs are not implemented yet');
  return [];
}

export function createTcpAccessLoggers(
  configs: readonly AccessLogConfig[],
  _sinks: AccessLogSinks,
): TcpSessionObserver[] {
  if (configs.length > 0) throw new Error('access logs are not implemented yet');
  return [];
}

export type { TcpSession };
