/**
 * Replies written straight to an HTTP/1.1 socket that node:http handed over ('upgrade', 'connect'): there
 * is no ServerResponse on these paths, so the status line and headers are formatted here.
 */
import type { Socket } from 'node:net';
import { nodeHttp } from '../../core/node-http.ts';
import type { ForwardAction, MatchedRoute, RouteRequest } from '../router/types.ts';
import type { ClusterEntry } from '../upstream/cluster-manager.ts';
import type { Host } from '../upstream/types.ts';
import type { HcmRuntime } from './connection-manager.ts';

export function headerBlock(status: number, headers: Record<string, string | string[] | undefined>): string {
  let out = `HTTP/1.1 ${status} ${nodeHttp.STATUS_CODES[status] ?? ''}\r\n`;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out += `${k}: ${x}\r\n`;
    else out += `${k}: ${v}\r\n`;
  }
  return out + '\r\n';
}

/** A complete response (plain-text body) and the end of the connection. */
export function rawReply(hcm: HcmRuntime, socket: Socket, status: number, body = ''): void {
  hcm.stats.responseClass(status);
  if (!socket.writable) return void socket.destroy();
  socket.end(
    headerBlock(status, {
      server: hcm.config.serverName,
      connection: 'close',
      'content-length': String(Buffer.byteLength(body)),
      ...(body ? { 'content-type': 'text/plain' } : {}),
    }) + body,
  );
}

/**
 * Routes a request that arrived as a raw socket: the matched forwarding route, or null once the socket has
 * been answered (no route → 404, a redirect, a direct response).
 */
export function routeRaw(
  hcm: HcmRuntime,
  socket: Socket,
  rr: RouteRequest,
): { matched: MatchedRoute; action: ForwardAction } | null {
  const matched = hcm.routeTable.match(rr);
  if (matched === null) {
    hcm.stats.rqNoRoute.inc();
    rawReply(hcm, socket, 404);
    return null;
  }
  const action = matched.route.action;
  if (action.kind === 'route') return { matched, action };
  if (action.kind === 'redirect') {
    const r = action.redirect(rr);
    hcm.stats.responseClass(r.status);
    socket.end(headerBlock(r.status, { location: r.location, connection: 'close', 'content-length': '0' }));
  } else rawReply(hcm, socket, action.status, action.body?.toString() ?? '');
  return null;
}

export interface RawUpstream {
  readonly pick: ReturnType<ForwardAction['pickCluster']>;
  readonly entry: ClusterEntry;
  readonly host: Host;
}

/** The route's cluster and an endpoint of it, or null once the socket has been answered 503. */
export function pickRawUpstream(
  hcm: HcmRuntime,
  socket: Socket,
  action: ForwardAction,
  rr: RouteRequest,
  refuse?: (entry: ClusterEntry) => string | undefined,
): RawUpstream | null {
  const pick = action.pickCluster(Math.random());
  const entry = hcm.clusters.get(pick.cluster);
  if (entry === undefined) {
    rawReply(hcm, socket, 503, 'cluster not found');
    return null;
  }
  const refusal = refuse?.(entry);
  if (refusal !== undefined) {
    rawReply(hcm, socket, 503, refusal);
    return null;
  }
  const host = entry.cluster.loadBalancer.chooseHost({ hash: action.computeHash(rr)?.hash });
  if (host === null) {
    entry.stats.noHealthyUpstream.inc();
    rawReply(hcm, socket, 503, 'no healthy upstream');
    return null;
  }
  return { pick, entry, host };
}
