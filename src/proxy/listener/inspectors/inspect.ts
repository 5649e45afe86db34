/**
 * Runs a listener's listener filters (Envoy's tls_inspector and http_inspector) on a new connection: peeks
 * at the client's first bytes until every filter has decided, then gives the bytes back to the socket and
 * reports what was detected, for filter chain matching.
 *
 * Filters run in their configured order on one growing buffer; each stops reading as soon as the bytes
 * decide. A client that sends nothing waits for listener_filters_timeout (none when 0), after which the
 * connection is closed or, with continue_on_listener_filters_timeout, matched on what is known. Malformed
 * or hostile bytes are only ever "not found"; nothing here throws into the socket's event handlers.
 */
import type { Socket } from 'node:net';
import type { Counter, Gauge, StatsStore } from '../../stats/store.ts';
import type { ListenerInspectionConfig } from '../types.ts';
import { parseClientHello } from './tls-client-hello.ts';
import { detectHttp } from './http-request-line.ts';

/** What listener filters learnt about a connection. */
export interface DetectedFacts {
  /** "tls" when tls_inspector saw a ClientHello; Envoy's default "raw_buffer" otherwise. */
  readonly transportProtocol: string;
  readonly serverName: string | undefined;
  /** The ClientHello's ALPN list, or the protocol http_inspector found ("http/1.1", "http/1.0", "h2c"). */
  readonly applicationProtocols: readonly string[];
}

export const PLAINTEXT_FACTS: DetectedFacts = {
  transportProtocol: 'raw_buffer',
  serverName: undefined,
  applicationProtocols: [],
};

/** Envoy's stat names, under the listener's `listener.<address>.` prefix. */
export class InspectionStats {
  readonly preCxTimeout: Counter;
  readonly preCxActive: Gauge;
  readonly tlsFound: Counter;
  readonly tlsNotFound: Counter;
  readonly clientHelloTooLarge: Counter;
  readonly sniFound: Counter;
  readonly sniNotFound: Counter;
  readonly alpnFound: Counter;
  readonly alpnNotFound: Counter;
  readonly http10Found: Counter;
  readonly http11Found: Counter;
  readonly http2Found: Counter;
  readonly httpNotFound: Counter;

  constructor(stats: StatsStore, prefix: string) {
    this.preCxTimeout = stats.counter(prefix + 'downstream_pre_cx_timeout');
    this.preCxActive = stats.gauge(prefix + 'downstream_pre_cx_active');
    const tls = prefix + 'tls_inspector.';
    this.tlsFound = stats.counter(tls + 'tls_found');
    this.tlsNotFound = stats.counter(tls + 'tls_not_found');
    this.clientHelloTooLarge = stats.counter(tls + 'client_hello_too_large');
    this.sniFound = stats.counter(tls + 'sni_found');
    this.sniNotFound = stats.counter(tls + 'sni_not_found');
    this.alpnFound = stats.counter(tls + 'alpn_found');
    this.alpnNotFound = stats.counter(tls + 'alpn_not_found');
    const http = prefix + 'http_inspector.';
    this.http10Found = stats.counter(http + 'http10_found');
    this.http11Found = stats.counter(http + 'http11_found');
    this.http2Found = stats.counter(http + 'http2_found');
    this.httpNotFound = stats.counter(http + 'http_not_found');
  }
}

/** One filter's verdict on the bytes so far. */
type Step = 'wait' | 'next' | 'reject';

/**
 * Inspects `socket` and calls `matched` with the facts once the filters are done (on a later tick, with the
 * peeked bytes back in the socket and the socket in its fresh, non-flowing state). A connection that must
 * be closed (timeout without continue, oversized ClientHello, client gone) is destroyed and `matched` is
 * never called.
 */
export function inspectConnection(
  socket: Socket,
  config: ListenerInspectionConfig,
  stats: InspectionStats,
  matched: (facts: DetectedFacts) => void,
): void {
  let buffer: Buffer = Buffer.alloc(0);
  let index = 0;
  let transportProtocol: string | undefined;
  let serverName: string | undefined;
  let applicationProtocols: readonly string[] = [];
  let done = false;

  const tls = (): Step => {
    const result = parseClientHello(buffer);
    switch (result.kind) {
      case 'need_more':
        return 'wait';
      case 'not_tls':
        stats.tlsNotFound.inc();
        return 'next';
      case 'too_large':
        stats.clientHelloTooLarge.inc();
        return 'reject';
      case 'client_hello':
        stats.tlsFound.inc();
        (result.serverName === undefined ? stats.sniNotFound : stats.sniFound).inc();
        (result.applicationProtocols.length === 0 ? stats.alpnNotFound : stats.alpnFound).inc();
        transportProtocol = 'tls';
        serverName = result.serverName;
        applicationProtocols = result.applicationProtocols;
        return 'next';
    }
  };

  const http = (): Step => {
    // Envoy's http_inspector leaves connections another filter found to be TLS alone.
    if (transportProtocol !== undefined && transportProtocol !== 'raw_buffer') return 'next';
    const result = detectHttp(buffer);
    if (result.kind === 'need_more') return 'wait';
    if (result.kind === 'not_http') {
      stats.httpNotFound.inc();
      return 'next';
    }
    const counter =
      result.protocol === 'h2c'
        ? stats.http2Found
        : result.protocol === 'http/1.1'
          ? stats.http11Found
          : stats.http10Found;
    counter.inc();
    applicationProtocols = [result.protocol];
    return 'next';
  };

  const finish = (): void => {
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    stats.preCxActive.dec();
  };

  const handOff = (): void => {
    finish();
    if (buffer.length > 0) socket.unshift(buffer);
    const facts: DetectedFacts = {
      transportProtocol: transportProtocol ?? 'raw_buffer',
      serverName,
      applicationProtocols,
    };
    // Removing the 'readable' listener resets the stream's flowing state on the next tick; handing over
    // after that lets the next handler use the socket as if it were fresh ('data', pause/resume, pipe).
    process.nextTick(() => {
      if (!socket.destroyed) matched(facts);
    });
  };

  const reject = (): void => {
    finish();
    socket.destroy();
  };

  const advance = (): void => {
    while (index < config.filters.length) {
      const step = config.filters[index].kind === 'tls_inspector' ? tls() : http();
      if (step === 'wait') return;
      if (step === 'reject') return reject();
      index++;
    }
    handOff();
  };

  function onReadable(): void {
    if (done) return;
    try {
      const chunks: Buffer[] = [buffer];
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
        chunks.push(chunk);
      if (chunks.length === 1) return;
      buffer = Buffer.concat(chunks);
      advance();
    } catch {
      // Defensive: a bug in a parser must cost this connection, never the proxy.
      if (!done) reject();
    }
  }

  // The client closed before the filters could decide: Envoy closes the connection too.
  function onEnd(): void {
    if (!done) reject();
  }

  function onClose(): void {
    if (!done) finish();
  }

  function onTimeout(): void {
    if (done) return;
    stats.preCxTimeout.inc();
    if (config.continueOnTimeout) handOff();
    else reject();
  }

  stats.preCxActive.inc();
  const timer = config.timeoutMs > 0 ? setTimeout(onTimeout, config.timeoutMs) : undefined;
  socket.on('readable', onReadable);
  socket.on('end', onEnd);
  socket.on('close', onClose);
}
