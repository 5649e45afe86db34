/** Access loggers built from `access_log` configs, and the sinks (files, stdout) they share. */
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession, TcpSessionObserver } from '../network/tcp-session.ts';
import type { AccessLogConfig } from './config.ts';
import type { AccessLogFilter } from './filters.ts';
import type { Formatter } from './formatter.ts';
import { recordDownstreamAddresses, recordUpstreamAddress } from './operators.ts';
import { AccessLogSinks } from './sinks.ts';
import type { BufferedWriter } from './sinks.ts';

export { AccessLogSinks };

export interface HttpAccessLogger {
  /** Called once when the stream is complete (response finished, reset or aborted). */
  log(stream: HttpStream): void;
}

class HttpLogger implements HttpAccessLogger {
  private readonly formatter: Formatter;
  private readonly filter: AccessLogFilter | null;
  private readonly writer: BufferedWriter;

  constructor(config: AccessLogConfig, sinks: AccessLogSinks) {
    this.formatter = config.formatter;
    this.filter = config.filter;
    this.writer = sinks.writer(config.path);
  }

  log(stream: HttpStream): void {
    if (this.filter !== null && !this.filter.http(stream)) return;
    this.writer.write(this.formatter.formatHttp(stream));
  }
}

class TcpLogger implements TcpSessionObserver {
  private readonly formatter: Formatter;
  private readonly filter: AccessLogFilter | null;
  private readonly writer: BufferedWriter;

  constructor(config: AccessLogConfig, sinks: AccessLogSinks) {
    this.formatter = config.formatter;
    this.filter = config.filter;
    this.writer = sinks.writer(config.path);
  }

  // Node forgets a socket's addresses once it is closed: copy them while the sockets are open.
  onOpen(session: TcpSession): void {
    recordDownstreamAddresses(session);
  }

  onUpstreamConnected(session: TcpSession): void {
    recordUpstreamAddress(session);
  }

  onClose(session: TcpSession): void {
    if (this.filter !== null && !this.filter.tcp(session)) return;
    this.writer.write(this.formatter.formatTcp(session));
  }
}

export function createHttpAccessLoggers(
  configs: readonly AccessLogConfig[],
  sinks: AccessLogSinks,
): HttpAccessLogger[] {
  return configs.map((c) => new HttpLogger(c, sinks));
}

export function createTcpAccessLoggers(
  configs: readonly AccessLogConfig[],
  sinks: AccessLogSinks,
): TcpSessionObserver[] {
  return configs.map((c) => new TcpLogger(c, sinks));
}

export type { TcpSession };
