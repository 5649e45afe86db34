/**
 * HTTP/1.1 CONNECT, terminated (Envoy's route `upgrade_configs: [{upgrade_type: CONNECT, connect_config: {}}]`):
 * the request is routed by its authority-form target (`host:port`) to a `connect_matcher` route; once a
 * connection to an endpoint of the route's cluster is up — over the cluster's own transport, so mTLS between
 * sidecars is kept — the client gets `200` and bytes flow both ways, raw, until either side closes.
 *
 * Local answers, as Envoy's: no route → 404 (NR); CONNECT not enabled for the route → 403; a target without
 * a port → 400 (RFC 9110 §9.3.6 requires one); unknown cluster → 503 (NC); no healthy endpoint → 503 (UH);
 * connect failure or timeout → 503 (UF).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { RouteRequest } from '../router/types.ts';
import { ownExchangeFrame, readPeerFrame, READ_TIMEOUT_MS } from '../network/peer-exchange.ts';
import type { HcmRuntime } from './connection-manager.ts';
import { plainIp } from './headers.ts';
import { headerBlock, pickRawUpstream, rawReply, routeRaw } from './raw-reply.ts';
import { parseAuthorityForm } from './request-target.ts';

/**
 * Istio's ALPN for TCP hops that begin with a peer metadata frame each way. A mesh cluster offers it for TCP
 * services; when the upstream picks it, the tunnel speaks the exchange as tcp_proxy would, or the server
 * side would hand our client's first bytes to its frame reader.
 */
const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';

export function handleConnect(hcm: HcmRuntime, req: IncomingMessage, socket: Socket, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const target = req.url ?? '';
  if (parseAuthorityForm(target) === null)
    return rawReply(hcm, socket, 400, 'CONNECT needs an authority-form target host:port');
  const rr: RouteRequest = {
    authority: target,
    path: '',
    method: 'CONNECT',
    headers: req.headers,
    scheme: 'http',
    sourceIp: plainIp(socket.remoteAddress),
  };
  const routed = routeRaw(hcm, socket, rr);
  if (routed === null) return;
  const { action } = routed;
  const enabled = action.upgradeOverrides.get('connect') ?? hcm.config.upgradeTypes.has('connect');
  if (!enabled) return rawReply(hcm, socket, 403, 'upgrade failed');
  if (action.connectConfig === undefined)
    return rawReply(hcm, socket, 501, 'forwarding CONNECT upstream is not supported by Weft');
  const upstream = pickRawUpstream(hcm, socket, action, rr);
  if (upstream === null) return;
  const { entry, host } = upstream;

  host.activeRequests++;
  entry.stats.upstreamRqTotal.inc();
  entry.stats.upstreamRqActive.inc();
  hcm.tunnels.add(socket);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    host.activeRequests--;
    entry.stats.upstreamRqActive.dec();
    hcm.tunnels.delete(socket);
  };
  socket.pause();
  const { socket: up, readyEvent } = entry
    .transportFor(host)
    .connect(host, { allowHalfOpen: true, noDelay: true });
  let connected = false;
  const connectTimer = setTimeout(
    () => up.destroy(new Error('connect timeout')),
    entry.config.connectTimeoutMs,
  );
  up.on('error', () => {
    if (connected) return;
    entry.stats.upstreamCxConnectFail.inc();
  });
  up.once('close', () => {
    clearTimeout(connectTimer);
    release();
    if (connected) socket.destroy();
    else if (!socket.destroyed)
      rawReply(hcm, socket, 503, 'upstream connect error or disconnect/reset before headers (UF)');
  });
  socket.once('close', () => {
    release();
    up.destroy();
  });
  up.once(readyEvent, () => {
    connected = true;
    clearTimeout(connectTimer);
    if (socket.destroyed) return void up.destroy();
    hcm.stats.responseClass(200);
    // A 2xx answer to CONNECT carries no Content-Length or Transfer-Encoding (RFC 9110 §9.3.6).
    socket.write(headerBlock(200, { server: hcm.config.serverName }));
    armIdleTimer(up, socket, action.idleTimeoutMs ?? hcm.config.streamIdleTimeoutMs);
    if ((up as TLSSocket).alpnProtocol === PEER_EXCHANGE_ALPN) {
      up.write(ownExchangeFrame(hcm.telemetry.node));
      readPeerFrame(up, READ_TIMEOUT_MS, (outcome) => {
        if (outcome.rest.length > 0) socket.write(outcome.rest);
        if (outcome.ended) socket.end();
        else up.pipe(socket);
      });
    } else {
      up.pipe(socket);
    }
    if (head.length > 0) up.write(head);
    socket.pipe(up);
    socket.resume();
  });
}

/** Idle means no bytes either way: one timer, refreshed by both sockets; 0 disables it. */
function armIdleTimer(up: Socket, down: Socket, idleMs: number): void {
  if (idleMs <= 0) return;
  const timer = setTimeout(() => {
    up.destroy();
    down.destroy();
  }, idleMs).unref();
  const touch = (): void => void timer.refresh();
  up.on('data', touch);
  down.on('data', touch);
  up.once('close', () => clearTimeout(timer));
}
