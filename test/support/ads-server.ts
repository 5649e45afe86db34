/**
 * A real gRPC ADS server for proxy tests (@grpc/grpc-js, messages through the shared wire codec), standing
 * in for the control plane. It serves whatever resources a test sets, in the state of the world or delta
 * protocol, records every request (decoded) so tests can assert ACKs, NACKs and the node, and can be
 * stopped and restarted on the same port.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from '../../src/api/envoy/wire.ts';
import type { WireJson } from '../../src/api/envoy/wire.ts';

type WireObject = { [key: string]: WireJson };

export const TYPES = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;

const WILDCARD: ReadonlySet<string> = new Set([TYPES.listener, TYPES.cluster]);

export interface RecordedRequest {
  readonly stream: number;
  readonly mode: 'sotw' | 'delta';
  readonly json: WireObject;
  readonly at: number;
}

interface StreamState {
  readonly id: number;
  readonly mode: 'sotw' | 'delta';
  readonly call: grpc.ServerDuplexStream<WireObject, WireObject | Buffer>;
  /** Subscribed names per type; null = wildcard. */
  readonly subs: Map<string, Set<string> | null>;
  /** Delta: what the client holds, name → version. */
  readonly known: Map<string, Map<string, string>>;
}

function nameOf(typeUrl: string, json: WireObject): string {
  const name = typeUrl === TYPES.endpoint ? json.cluster_name : json.name;
  return typeof name === 'string' ? name : '';
}

function contentVersion(json: WireObject): string {
  let h = 0;
  const s = JSON.stringify(json);
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return (h >>> 0).toString(16);
}

const SOTW_REQ = 'envoy.service.discovery.v3.DiscoveryRequest';
const SOTW_RESP = 'envoy.service.discovery.v3.DiscoveryResponse';
const DELTA_REQ = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const DELTA_RESP = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

const serialize = (typeName: string) => (value: WireObject | Buffer) =>
  Buffer.isBuffer(value) ? value : Buffer.from(encodeMessage(typeName, value));

const SERVICE: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: serialize(SOTW_REQ),
    requestDeserialize: (b: Buffer) => decodeMessage(SOTW_REQ, b),
    responseSerialize: serialize(SOTW_RESP),
    responseDeserialize: (b: Buffer) => decodeMessage(SOTW_RESP, b),
  },
  DeltaAggregatedResources: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: serialize(DELTA_REQ),
    requestDeserialize: (b: Buffer) => decodeMessage(DELTA_REQ, b),
    responseSerialize: serialize(DELTA_RESP),
    responseDeserialize: (b: Buffer) => decodeMessage(DELTA_RESP, b),
  },
};

export class TestAdsServer {
  port = 0;
  readonly requests: RecordedRequest[] = [];
  private server: grpc.Server | null = null;
  private readonly resources = new Map<string, Map<string, WireObject>>();
  private readonly versions = new Map<string, number>();
  private readonly streams = new Set<StreamState>();
  private nextStream = 0;
  private nonce = 0;
  /** Streams ever opened. */
  streamCount = 0;

  static async start(port = 0): Promise<TestAdsServer> {
    const s = new TestAdsServer();
    await s.listen(port);
    return s;
  }

  async listen(port = this.port): Promise<void> {
    const server = new grpc.Server();
    server.addService(SERVICE, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<WireObject, WireObject>) =>
        this.onStream(call, 'sotw'),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<WireObject, WireObject>) =>
        this.onStream(call, 'delta'),
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
  }

  /** Kills the server and every stream, as a crashed control plane. */
  stop(): void {
    this.server?.forceShutdown();
    this.server = null;
    this.streams.clear();
  }

  connectedStreams(): number {
    return this.streams.size;
  }

  /** Replaces every resource of a type and pushes the change to the streams subscribed to it; returns the version. */
  set(
    typeUrl: string,
    resources: readonly Record<string, unknown>[],
    opts: { resendAll?: boolean } = {},
  ): string {
    // Delta sends only what changed; resendAll sends every resource again (a server re-pushing everything).
    if (opts.resendAll) for (const st of this.streams) st.known.get(typeUrl)?.clear();
    const map = new Map<string, WireObject>();
    for (const r of resources as readonly WireObject[])
      map.set(nameOf(typeUrl, r), { '@type': typeUrl, ...r });
    this.resources.set(typeUrl, map);
    const version = (this.versions.get(typeUrl) ?? 0) + 1;
    this.versions.set(typeUrl, version);
    for (const st of this.streams) this.push(st, typeUrl);
    return `v${version}`;
  }

  version(typeUrl: string): string {
    return `v${this.versions.get(typeUrl) ?? 0}`;
  }

  /** Sends raw bytes as a response message on every stream (garbage tests). */
  sendRaw(bytes: Buffer): void {
    for (const st of this.streams) st.call.write(bytes);
  }

  /** Resolves with the first request (already received or still to come) that satisfies `pred`. */
  async waitForRequest(
    pred: (r: RecordedRequest) => boolean,
    ms = 10_000,
    what = 'request',
  ): Promise<RecordedRequest> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.requests.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits for the proxy to ACK `version` of a type (state of the world: version_info; delta: any ACK after it was set). */
  waitForAck(typeUrl: string, version: string, ms = 10_000): Promise<RecordedRequest> {
    return this.waitForRequest(
      (r) =>
        r.json.type_url === typeUrl &&
        r.json.error_detail === undefined &&
        typeof r.json.response_nonce === 'string' &&
        r.json.response_nonce !== '' &&
        (r.mode === 'delta'
          ? this.nonceVersion.get(r.json.response_nonce) === version
          : r.json.version_info === version),
      ms,
      `ACK of ${typeUrl} ${version}`,
    );
  }

  /** Waits for a NACK of a type. */
  waitForNack(typeUrl: string, ms = 10_000): Promise<RecordedRequest> {
    return this.waitForRequest(
      (r) => r.json.type_url === typeUrl && r.json.error_detail !== undefined,
      ms,
      `NACK of ${typeUrl}`,
    );
  }

  /** nonce → the version of the type it carried (to match delta ACKs to versions). */
  private readonly nonceVersion = new Map<string, string>();

  private onStream(
    call: grpc.ServerDuplexStream<WireObject, WireObject | Buffer>,
    mode: 'sotw' | 'delta',
  ): void {
    const st: StreamState = { id: ++this.nextStream, mode, call, subs: new Map(), known: new Map() };
    this.streamCount++;
    this.streams.add(st);
    call.on('data', (req: WireObject) => {
      this.requests.push({ stream: st.id, mode, json: req, at: Date.now() });
      if (mode === 'sotw') this.onSotwRequest(st, req);
      else this.onDeltaRequest(st, req);
    });
    const done = (): void => {
      this.streams.delete(st);
    };
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
  }

  private onSotwRequest(st: StreamState, req: WireObject): void {
    const typeUrl = typeof req.type_url === 'string' ? req.type_url : '';
    const names = ((req.resource_names as string[] | undefined) ?? []).slice().sort();
    const sub = WILDCARD.has(typeUrl) ? null : new Set(names);
    const prev = st.subs.get(typeUrl);
    const changed =
      prev === undefined ||
      (sub !== null && (prev === null || [...prev].sort().join(',') !== names.join(',')));
    st.subs.set(typeUrl, sub);
    if (!req.response_nonce || changed) this.push(st, typeUrl);
  }

  private onDeltaRequest(st: StreamState, req: WireObject): void {
    const typeUrl = typeof req.type_url === 'string' ? req.type_url : '';
    const subscribe = (req.resource_names_subscribe as string[] | undefined) ?? [];
    const unsubscribe = (req.resource_names_unsubscribe as string[] | undefined) ?? [];
    let sub = st.subs.get(typeUrl);
    let known = st.known.get(typeUrl);
    const first = sub === undefined;
    if (known === undefined) st.known.set(typeUrl, (known = new Map()));
    if (first) {
      sub =
        WILDCARD.has(typeUrl) && subscribe.length === 0 ? null : new Set(subscribe.filter((n) => n !== '*'));
      const initial = (req.initial_resource_versions as Record<string, string> | undefined) ?? {};
      for (const [n, v] of Object.entries(initial)) known.set(n, v);
    } else if (sub !== null && sub !== undefined) {
      for (const n of subscribe) sub.add(n);
      for (const n of unsubscribe) {
        sub.delete(n);
        known.delete(n);
      }
    }
    st.subs.set(typeUrl, sub ?? null);
    if (first || subscribe.length > 0) this.push(st, typeUrl);
  }

  private push(st: StreamState, typeUrl: string): void {
    const sub = st.subs.get(typeUrl);
    const all = this.resources.get(typeUrl);
    if (sub === undefined || all === undefined) return;
    const wanted = [...all.values()].filter((r) => sub === null || sub.has(nameOf(typeUrl, r)));
    const nonce = `n${++this.nonce}`;
    const version = this.version(typeUrl);
    this.nonceVersion.set(nonce, version);
    if (st.mode === 'sotw') {
      if (sub !== null && sub.size === 0) return;
      st.call.write({ version_info: version, resources: wanted, type_url: typeUrl, nonce });
      return;
    }
    const known = st.known.get(typeUrl)!;
    const changed: WireObject[] = [];
    for (const r of wanted) {
      const name = nameOf(typeUrl, r);
      const v = contentVersion(r);
      if (known.get(name) !== v) {
        changed.push({ name, version: v, resource: r });
        known.set(name, v);
      }
    }
    const present = new Set(wanted.map((r) => nameOf(typeUrl, r)));
    const removed = [...known.keys()].filter((n) => !present.has(n) && (sub === null || sub.has(n)));
    for (const n of removed) known.delete(n);
    if (changed.length === 0 && removed.length === 0) return;
    st.call.write({
      system_version_info: version,
      resources: changed,
      removed_resources: removed,
      type_url: typeUrl,
      nonce,
    });
  }
}
