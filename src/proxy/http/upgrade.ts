/**
 * HTTP/1.1 Upgrade (WebSocket): routed like any request, then, once the upstream answers 101, the two
 * sockets are spliced and bytes flow both ways until either side closes. Timeouts do not apply to an
 * upgraded stream, as in Envoy.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RouteRequest } from '../router/types.ts';
import type { UpstreamError, UpstreamHandler } from '../upstream/codec.ts';
import type { HcmRuntime } from './connection-manager.ts';
import { downstreamResponseHeaders, plainIp, upstreamRequestHeaders } from './headers.ts';
import { headerBlock, pickRawUpstream, rawReply, routeRaw } from './raw-reply.ts';
import { parseAbsoluteForm } from './request-target.ts';

export function handleUpgrade(hcm: HcmRuntime, req: IncomingMessage, socket: Socket, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const type = (req.headers.upgrade ?? '').toLowerCase();
  // An upgrade sent to the proxy in absolute form is routed by its URI, as any request.
  const url = req.url ?? '/';
  const absolute = url.charCodeAt(0) === 47 || !hcm.config.allowAbsoluteUrl ? null : parseAbsoluteForm(url);
  const rr: RouteRequest = {
    authority: absolute?.authority ?? req.headers.host ?? '',
    path: absolute?.path ?? url,
    method: req.method ?? 'GET',
    headers: req.headers,
    scheme: 'http',
    sourceIp: plainIp(socket.remoteAddress),
  };
  const routed = routeRaw(hcm, socket, rr);
  if (routed === null) return;
  const { matched, action } = routed;
  const enabled = action.upgradeOverrides.get(type) ?? hcm.config.upgradeTypes.has(type);
  if (!enabled) return rawReply(hcm, socket, 403, 'upgrade failed');
  const upstream = pickRawUpstream(hcm, socket, action, rr, (entry) =>
    entry.config.http2 ? 'upgrade to an HTTP/2 cluster is not supported' : undefined,
  );
  if (upstream === null) return;
  const { pick, entry, host } = upstream;
  const headers = upstreamRequestHeaders(req.headers);
  headers.host = action.hostRewriteLiteral ?? rr.authority;
  if (pick.requestHeaders) pick.requestHeaders.apply(headers, rr);
  for (const m of matched.requestHeaders) m.apply(headers, rr);
  host.activeRequests++;
  entry.stats.upstreamRqTotal.inc();
  entry.stats.upstreamRqActive.inc();
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    host.activeRequests--;
    entry.stats.upstreamRqActive.dec();
  };
  let abort: ((e: Error) => void) | null = null;
  socket.once('close', () => {
    if (!released) abort?.(new Error('downstream closed'));
    release();
  });
  const handler: UpstreamHandler = {
    onStart(a) {
      abort = a;
    },
    onUpgrade(status: number, upHeaders: IncomingHttpHeaders, upstream: Duplex) {
      entry.stats.response(status);
      hcm.stats.responseClass(status);
      const out = downstreamResponseHeaders(upHeaders);
      for (const m of matched.responseHeaders) m.apply(out, rr);
      out.connection = 'upgrade';
      out.upgrade = upHeaders.upgrade ?? type;
      socket.write(headerBlock(status, out));
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
      upstream.on('close', () => {
        release();
        socket.destroy();
      });
      socket.on('close', () => upstream.destroy());
    },
    onHeaders(status: number, upHeaders: IncomingHttpHeaders) {
      // The upstream declined the upgrade: relay its answer and close.
      entry.stats.response(status);
      hcm.stats.responseClass(status);
      const out = downstreamResponseHeaders(upHeaders);
      out.connection = 'close';
      delete out['content-length'];
      socket.write(headerBlock(status, out));
    },
    onData(chunk: Buffer) {
      return socket.write(chunk);
    },
    onEnd() {
      release();
      socket.end();
    },
    onError(err: UpstreamError) {
      release();
      const flag = err.failure === 'connect' ? 'UF' : 'UR';
      if (flag === 'UF') entry.stats.upstreamCxConnectFail.inc();
      rawReply(hcm, socket, 503, `upstream connect error or disconnect/reset before headers (${flag})`);
    },
  };
  entry
    .pool(host)
    .send(
      { method: req.method ?? 'GET', path: action.rewritePath(rr.path), headers, body: null, upgrade: type },
      handler,
    );
}
