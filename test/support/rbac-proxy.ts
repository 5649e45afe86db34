/**
 * Test support for RBAC: a real Weft proxy whose HTTP listeners run given filters before a router to a
 * test upstream, and a client that can pick its source address (any 127.x.y.z reaches a loopback
 * listener on Linux), so policies on peer addresses and ports are exercised end to end.
 */
import http from 'node:http';
import net from 'node:net';
import type { JsonObject } from '../../src/core/json.ts';
import type { RbacRequest } from '../../src/proxy/http/filters/rbac-matchers.ts';
import type { ConnectionSecurity } from '../../src/proxy/tls/connection-security.ts';
import { bootstrapDoc, httpListener, staticCluster } from './bootstrap.ts';
import { startProxy } from './proxy.ts';
import type { RunningProxy } from './proxy.ts';
import { startHttpUpstream } from './servers.ts';

export const ROUTER_FILTER = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
};

export interface Probe {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  /** The client's source address (default 127.0.0.1). */
  from?: string;
  /** Which listener (default the first). */
  listener?: number;
}

export interface ProbeReply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export interface RbacProxy {
  readonly proxy: RunningProxy;
  /** The listeners' ports, in the order asked for. */
  readonly ports: readonly number[];
  send(probe: Probe): Promise<ProbeReply>;
  stats(): Promise<string>;
  stop(): Promise<void>;
}

/** Free TCP ports on 127.0.0.1, for listeners whose port a policy must name before the proxy starts. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function send(port: number, probe: Probe): Promise<ProbeReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        localAddress: probe.from ?? '127.0.0.1',
        method: probe.method ?? 'GET',
        path: probe.path ?? '/',
        headers: { host: probe.host ?? 'svc.test', ...probe.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Starts an upstream and a proxy with `filters` (then the router) on each listener port (0 = any). */
export async function startRbacProxy(
  filters: readonly JsonObject[],
  ports: readonly number[] = [0],
): Promise<RbacProxy> {
  const up = await startHttpUpstream();
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(
      bootstrapDoc(
        ports.map((port, i) =>
          httpListener({ name: `l${i}`, port, hcm: { http_filters: [...filters, ROUTER_FILTER] } }),
        ),
        [staticCluster('backend', [{ port: up.port }])],
      ),
    );
  } catch (e) {
    await up.close();
    throw e;
  }
  const actual = ports.map((_, i) => proxy.port(`l${i}`));
  return {
    proxy,
    ports: actual,
    send: (probe) => send(actual[probe.listener ?? 0], probe),
    stats: async () => (await send(proxy.adminPort, { path: '/stats' })).body,
    stop: async () => {
      await proxy.stop();
      await up.close();
    },
  };
}

/** A request as the RBAC matchers read it, for matcher-level tests (facts a plain proxy cannot have yet: TLS peers, JWT metadata). */
export function rbacRequest(
  over: Partial<Omit<RbacRequest, 'req'>> & {
    remoteAddress?: string;
    localAddress?: string;
    localPort?: number;
    metadata?: Record<string, Record<string, unknown>>;
  } = {},
): RbacRequest {
  return {
    authority: over.authority ?? 'svc',
    path: over.path ?? '/',
    method: over.method ?? 'GET',
    headers: over.headers ?? {},
    scheme: 'http',
    sourceIp: over.sourceIp ?? over.remoteAddress ?? '127.0.0.1',
    req: {
      socket: {
        remoteAddress: over.remoteAddress ?? '127.0.0.1',
        localAddress: over.localAddress ?? '127.0.0.1',
        localPort: over.localPort ?? 8080,
      },
    },
    downstreamSecurity: over.downstreamSecurity,
    dynamicMetadata: new Map(Object.entries(over.metadata ?? {})),
  };
}

export function tlsPeer(over: Partial<ConnectionSecurity>): ConnectionSecurity {
  return {
    peerPrincipal: over.peerUriSans?.[0],
    peerUriSans: [],
    peerDnsSans: [],
    peerSubject: undefined,
    localPrincipal: undefined,
    sni: '',
    alpn: '',
    tlsVersion: 'TLSv1.3',
    ...over,
  };
}
