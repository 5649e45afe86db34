// One simulated sidecar on a real ADS stream (HTTP/2 + gRPC framing, one connection per proxy, as Envoy
// has). It subscribes as Envoy does: wildcard Cluster and Listener, then ClusterLoadAssignments for the EDS
// clusters it was given and RouteConfigurations for the RDS names its listeners carry; it ACKs every
// response with its version and nonce (state of the world) or nonce (delta). It keeps only names and
// versions, never the resources themselves.
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import {
  GrpcDeframer,
  clusterInfo,
  encodeDeltaRequest,
  encodeNames,
  encodeNode,
  grpcFrame,
  listenerRouteNames,
  parseDeltaResponse,
  parseSotwResponse,
  resourceName,
  sotwRequestParts,
} from './xds-wire.ts';

export const TYPE = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

/** Absolute milliseconds, comparable between processes on the same machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface SimProxyIdentity {
  id: string;
  name: string;
  namespace: string;
  ip: string;
  labels: Readonly<Record<string, string>>;
  delta: boolean;
}

export interface SimProxyEvents {
  /** Every subscribed type ACKed at least once and every EDS/RDS name received: the proxy is configured. */
  onSynced(proxy: SimProxy, at: number): void;
  /** A ClusterLoadAssignment arrived (its name and encoded payload). */
  onEndpoint(proxy: SimProxy, name: string, payload: Buffer, at: number): void;
  /** A response that carried ClusterLoadAssignments arrived (one "update" of the proxy's endpoints). */
  onEndpointResponse(proxy: SimProxy, at: number): void;
  onError(proxy: SimProxy, message: string): void;
}

interface TypeSub {
  versionInfo: string;
  nonce: string;
  /** SotW: the subscription, encoded once. */
  namesBytes: Buffer;
  /** Names this type is subscribed to (EDS/RDS); empty for wildcard. */
  names: string[];
  /** Subscribed names not received yet. */
  missing: Set<string>;
  acked: boolean;
}

function newSub(): TypeSub {
  return {
    versionInfo: '',
    nonce: '',
    namesBytes: Buffer.alloc(0),
    names: [],
    missing: new Set(),
    acked: false,
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}

export class SimProxy {
  readonly identity: SimProxyIdentity;
  readonly #events: SimProxyEvents;
  readonly #subs = new Map<string, TypeSub>();
  /** Delta: clusters and listeners held (name → EDS name / route names). */
  readonly #deltaClusters = new Map<string, string | null>();
  readonly #deltaListeners = new Map<string, string[]>();
  #session: http2.ClientHttp2Session | null = null;
  #stream: http2.ClientHttp2Stream | null = null;
  #nodeSent = false;
  #nodeBytes: Buffer;
  #target = '';
  /** Which connection attempt is current: events of older ones are ignored. */
  #generation = 0;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  reconnects = 0;
  connectStartedAt = 0;
  syncedAt = 0;
  /** The current stream has everything it asked for (false again after a reconnect until it has). */
  inSync = false;
  responses = 0;
  bytesReceived = 0;
  closed = false;

  constructor(identity: SimProxyIdentity, events: SimProxyEvents) {
    this.identity = identity;
    this.#events = events;
    this.#nodeBytes = encodeNode({
      id: identity.id,
      cluster: `${identity.name}.${identity.namespace}`,
      metadata: {
        NAME: identity.name,
        NAMESPACE: identity.namespace,
        INSTANCE_IPS: identity.ip,
        LABELS: identity.labels,
        INTERCEPTION_MODE: 'NONE',
      },
      locality: { region: 'region-1', zone: 'zone-a' },
    });
  }

  connect(target: string): void {
    this.connectStartedAt = nowMs();
    this.#target = target;
    this.#open();
  }

  /** One connection attempt: a session, the ADS stream, the first requests. */
  #open(): void {
    const gen = ++this.#generation;
    const current = (): boolean => gen === this.#generation && !this.closed;
    // Envoy's HTTP/2 windows for its xDS connection are large (256 MiB by default); a small one would make
    // the control plane wait on window updates for every big response.
    const session = http2.connect(this.#target, {
      settings: { initialWindowSize: 64 * 1024 * 1024, enablePush: false },
      // Node's default (10 MB) would end a session that has a few big responses waiting to be read while the
      // load process is busy; Envoy has no such limit on its xDS connection.
      maxSessionMemory: 1024,
    });
    this.#session = session;
    const fail = (message: string): void => {
      if (current()) this.#fail(message);
    };
    session.on('error', (err) => fail(`session: ${err.message}`));
    session.on('connect', () => session.setLocalWindowSize(256 * 1024 * 1024));
    const path = `${SERVICE}/${this.identity.delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources'}`;
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.#stream = stream;
    const deframer = new GrpcDeframer((m) => {
      if (current()) this.#onMessage(m);
    });
    stream.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      try {
        deframer.push(chunk);
      } catch (err) {
        fail((err as Error).message);
      }
    });
    stream.on('response', (headers) => {
      const status = headers['grpc-status'];
      if (status !== undefined && status !== '0') fail(`grpc-status ${String(status)}`);
    });
    stream.on('trailers', (trailers) => {
      const status = trailers['grpc-status'];
      if (status !== '0')
        fail(`stream ended: grpc-status ${String(status)} ${String(trailers['grpc-message'] ?? '')}`);
    });
    stream.on('error', (err) => fail(`stream: ${err.message}`));
    stream.on('close', () => fail('stream closed by the server'));
    // Envoy asks for clusters first, then listeners.
    this.#request(TYPE.cluster);
    this.#request(TYPE.listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.#retry);
    this.#stream?.close();
    this.#session?.close();
  }

  /** The stream failed: report it, forget what this stream was sent, and reconnect with backoff, as Envoy does. */
  #fail(message: string): void {
    this.#events.onError(this, message);
    this.#generation++;
    this.#session?.destroy();
    this.#session = null;
    this.#stream = null;
    this.#subs.clear();
    this.#deltaClusters.clear();
    this.#deltaListeners.clear();
    this.#nodeSent = false;
    this.inSync = false;
    this.reconnects++;
    const backoff = Math.min(5000, 250 * 2 ** Math.min(this.#failures++, 5));
    this.#retry = setTimeout(() => this.#open(), backoff * (0.5 + Math.random() / 2));
  }

  #sub(typeUrl: string): TypeSub {
    let s = this.#subs.get(typeUrl);
    if (!s) {
      s = newSub();
      this.#subs.set(typeUrl, s);
    }
    return s;
  }

  #write(message: Buffer): void {
    if (this.closed || !this.#stream) return;
    this.#stream.write(grpcFrame(message));
  }

  #writeParts(parts: Buffer[]): void {
    const stream = this.#stream;
    if (this.closed || !stream) return;
    stream.cork();
    for (const p of parts) if (p.length > 0) stream.write(p);
    process.nextTick(() => stream.uncork());
  }

  /** SotW: a request (subscription or ACK) for one type; delta: an ACK or a subscription change. */
  #request(typeUrl: string, subscribe: string[] = [], unsubscribe: string[] = []): void {
    const node = this.#nodeSent ? null : this.#nodeBytes;
    this.#nodeSent = true;
    const sub = this.#sub(typeUrl);
    if (this.identity.delta) {
      this.#write(encodeDeltaRequest({ node, typeUrl, subscribe, unsubscribe, nonce: sub.nonce }));
      sub.nonce = '';
    } else {
      this.#writeParts(
        sotwRequestParts({
          versionInfo: sub.versionInfo,
          node,
          names: sub.namesBytes,
          typeUrl,
          nonce: sub.nonce,
        }),
      );
    }
  }

  /** A new name list for EDS or RDS: SotW sends the whole list (with the last version and nonce), delta the difference. */
  #resubscribe(typeUrl: string, names: string[]): void {
    const sub = this.#sub(typeUrl);
    if (sameList(sub.names, names)) return;
    const before = new Set(sub.names);
    const after = new Set(names);
    for (const n of names) if (!before.has(n)) sub.missing.add(n);
    for (const n of sub.names) if (!after.has(n)) sub.missing.delete(n);
    if (this.identity.delta) {
      const added = names.filter((n) => !before.has(n));
      const removed = sub.names.filter((n) => !after.has(n));
      sub.names = names;
      const nonce = sub.nonce;
      sub.nonce = '';
      this.#write(encodeDeltaRequest({ node: null, typeUrl, subscribe: added, unsubscribe: removed, nonce }));
      return;
    }
    sub.names = names;
    sub.namesBytes = encodeNames(3, names);
    this.#request(typeUrl);
  }

  #onMessage(message: Buffer): void {
    const at = nowMs();
    this.responses++;
    this.#failures = 0;
    if (this.identity.delta) this.#onDelta(message, at);
    else this.#onSotw(message, at);
    this.#checkSynced(at);
  }

  #onSotw(message: Buffer, at: number): void {
    const res = parseSotwResponse(message);
    const sub = this.#sub(res.typeUrl);
    sub.versionInfo = res.versionInfo;
    sub.nonce = res.nonce;
    switch (res.typeUrl) {
      case TYPE.cluster: {
        const eds: string[] = [];
        for (const value of res.resources) {
          const { edsName } = clusterInfo(value);
          if (edsName !== null) eds.push(edsName);
        }
        this.#ack(res.typeUrl);
        this.#resubscribe(TYPE.endpoint, eds);
        return;
      }
      case TYPE.listener: {
        const routes = new Set<string>();
        for (const value of res.resources) for (const n of listenerRouteNames(value)) routes.add(n);
        this.#ack(res.typeUrl);
        this.#resubscribe(TYPE.route, [...routes]);
        return;
      }
      case TYPE.endpoint:
        this.#received(sub, res.resources, at, true);
        this.#ack(res.typeUrl);
        return;
      case TYPE.route:
        this.#received(sub, res.resources, at, false);
        this.#ack(res.typeUrl);
        return;
      default:
        this.#ack(res.typeUrl);
    }
  }

  #received(sub: TypeSub, resources: readonly Buffer[], at: number, endpoints: boolean): void {
    for (const value of resources) {
      const name = resourceName(value);
      sub.missing.delete(name);
      if (endpoints) this.#events.onEndpoint(this, name, value, at);
    }
    if (endpoints && resources.length > 0) this.#events.onEndpointResponse(this, at);
  }

  #ack(typeUrl: string): void {
    const sub = this.#sub(typeUrl);
    sub.acked = true;
    this.#request(typeUrl);
  }

  #onDelta(message: Buffer, at: number): void {
    const res = parseDeltaResponse(message);
    const sub = this.#sub(res.typeUrl);
    sub.nonce = res.nonce;
    switch (res.typeUrl) {
      case TYPE.cluster: {
        for (const name of res.removed) this.#deltaClusters.delete(name);
        for (const r of res.resources) this.#deltaClusters.set(r.name, clusterInfo(r.value).edsName);
        this.#ack(res.typeUrl);
        const eds: string[] = [];
        for (const e of this.#deltaClusters.values()) if (e !== null) eds.push(e);
        this.#resubscribe(TYPE.endpoint, eds);
        return;
      }
      case TYPE.listener: {
        for (const name of res.removed) this.#deltaListeners.delete(name);
        for (const r of res.resources) this.#deltaListeners.set(r.name, listenerRouteNames(r.value));
        this.#ack(res.typeUrl);
        this.#resubscribe(TYPE.route, [...new Set([...this.#deltaListeners.values()].flat())]);
        return;
      }
      case TYPE.endpoint:
      case TYPE.route:
        this.#received(
          sub,
          res.resources.map((r) => r.value),
          at,
          res.typeUrl === TYPE.endpoint,
        );
        for (const name of res.removed) sub.missing.delete(name);
        this.#ack(res.typeUrl);
        return;
      default:
        this.#ack(res.typeUrl);
    }
  }

  #checkSynced(at: number): void {
    if (this.inSync) return;
    for (const [t, parent] of [
      [TYPE.cluster, null],
      [TYPE.listener, null],
      [TYPE.endpoint, TYPE.cluster],
      [TYPE.route, TYPE.listener],
    ] as const) {
      const s = this.#subs.get(t);
      // EDS/RDS never asked for: fine once the clusters/listeners that would name them are ACKed.
      if (!s && parent !== null && this.#subs.get(parent)?.acked) continue;
      if (!s || !s.acked || s.missing.size > 0) return;
    }
    this.inSync = true;
    if (this.syncedAt > 0) return;
    this.syncedAt = at;
    this.#events.onSynced(this, at);
  }
}
