/**
 * The ADS server: Envoy's AggregatedDiscoveryService (state of the world and delta) over gRPC.
 *
 * push() → PushQueue (debounce, merge) → one round: every affected stream is asked to push the touched
 * types (all of them for a full push, ClusterLoadAssignment only for an endpoint push) → each stream
 * regenerates those types for its proxy when its previous push is answered and sends only what changed.
 * Resources are encoded once per distinct content (ResourceEncoder) and shared by every stream.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { JsonObject } from '../../core/json.ts';
import { createLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import type {
  ConnectionContext,
  ProxyStatus,
  PushTrigger,
  SentInfo,
  StreamKind,
  XdsConnection,
} from './connection.ts';
import { DeltaConnection } from './delta-connection.ts';
import { widenReceiveWindows } from './flow-control.ts';
import { PushQueue } from './push-queue.ts';
import type { MergedPush } from './push-queue.ts';
import { ResourceEncoder } from './resources.ts';
import { adsServiceDefinition } from './service.ts';
import type { DecodedRequest } from './service.ts';
import { SotwConnection } from './sotw-connection.ts';
import { SendBudget } from './send-budget.ts';
import { Subscriptions } from './subscriptions.ts';
import { SHORT_TYPE_NAME } from './type-state.ts';
import { PUSH_ORDER, TYPE_URL } from './types.ts';
import type { ProxyNode, PushRequest, XdsGenerator } from './types.ts';

export type { ProxyStatus, StreamKind } from './connection.ts';
export type { TypeStatus, SyncState } from './type-state.ts';

export interface AdsServerOptions {
  generator: XdsGenerator;
  /** Quiet period before a push round fires. Default 100 ms. */
  debounceMs?: number;
  /** A burst of pushes is never delayed more than this. Default 1000 ms. */
  debounceMaxMs?: number;
  /** How long a push waits for the proxy to answer the previous one before it goes out anyway. Default 5000 ms. */
  ackTimeoutMs?: number;
  /** control_plane.identifier in every response. Default "weft". */
  controlPlaneId?: string;
  /** Response bytes written to streams but not yet taken by them, beyond which streams wait. Default 16 MiB. */
  sendBudgetBytes?: number;
  logger?: Logger;
}

/** A response handed to a stream. */
export interface SentEvent {
  node: ProxyNode;
  stream: StreamKind;
  typeUrl: string;
  version: string;
  resources: number;
  removed: number;
  /** Why: the merged push's reasons, or null for a reply to the proxy's own request. */
  reasons: readonly string[] | null;
  /** From the first push() of the round to the response written; null for a reply to a request. */
  pushSeconds: number | null;
}

export interface NackEvent {
  node: ProxyNode;
  typeUrl: string;
  message: string;
}

export interface RoundEvent {
  full: boolean;
  merged: number;
  reasons: string[];
  proxies: number;
  /** From the first push() merged into the round to the round's start (the debounce, and any wait). */
  queuedMs: number;
  /** From the round's start to every affected stream having been asked to push. */
  durationMs: number;
}

export interface AdsServerEvents {
  connect: [node: ProxyNode, connectionId: string];
  disconnect: [node: ProxyNode, connectionId: string];
  sent: [event: SentEvent];
  nack: [event: NackEvent];
  round: [event: RoundEvent];
  invalid: [message: string];
}

export interface PushStats {
  /** push() calls. */
  pushRequests: number;
  /** Debounced rounds sent. */
  rounds: number;
  /** Responses written, by short type name (cds, eds, lds, rds, sds). */
  responses: Record<string, number>;
  nacks: Record<string, number>;
  invalidRequests: number;
  /** Distinct resources encoded since start (a measure of the encode cache's work). */
  encodedResources: number;
  lastRound: (RoundEvent & { at: string }) | null;
}

export interface ConnectionSummary {
  connectionId: string;
  proxyId: string | null;
  peer: string;
  stream: StreamKind;
  connectedAt: string;
  types: string[];
}

/** What the generator produces for one connected proxy, per type it subscribed to. */
export interface GeneratedConfig {
  node: ProxyNode;
  types: Map<string, { name: string; version: string; resource: JsonObject }[]>;
}

const ALL_TYPES: ReadonlySet<string> = new Set(PUSH_ORDER);
const ENDPOINT_TYPES: ReadonlySet<string> = new Set([TYPE_URL.endpoint]);
const MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** A round hands the event loop back this often, so ACKs and new streams are served during a long round. */
const ROUND_SLICE_MS = 20;

function counters(): Record<string, number> {
  return Object.fromEntries(Object.values(SHORT_TYPE_NAME).map((t) => [t, 0]));
}

export class AdsServer extends EventEmitter<AdsServerEvents> {
  readonly #generator: XdsGenerator;
  readonly #logger: Logger;
  readonly #encoder = new ResourceEncoder();
  readonly #queue: PushQueue;
  readonly #connections = new Set<XdsConnection>();
  readonly #context: ConnectionContext;
  readonly #stats: Omit<PushStats, 'encodedResources'> = {
    pushRequests: 0,
    rounds: 0,
    responses: counters(),
    nacks: counters(),
    invalidRequests: 0,
    lastRound: null,
  };
  #server: Server | null = null;
  #nextConnection = 0;

  constructor(options: AdsServerOptions) {
    super();
    this.#generator = options.generator;
    this.#logger = options.logger ?? createLogger('xds');
    this.#queue = new PushQueue({
      debounceMs: options.debounceMs ?? 100,
      debounceMaxMs: options.debounceMaxMs ?? 1000,
      onRound: (push) => this.#round(push),
      logger: this.#logger,
    });
    this.#context = this.#makeContext(
      options.ackTimeoutMs ?? 5000,
      options.controlPlaneId ?? 'weft',
      options.sendBudgetBytes ?? 16 * 1024 * 1024,
    );
  }

  /**
   * Starts serving on host:port (0 = any free port); resolves to the bound port. `services` are served on
   * the same port (the CA, as istiod serves it beside xDS).
   */
  listen(
    port: number,
    host = '127.0.0.1',
    services: readonly { definition: ServiceDefinition; handlers: UntypedServiceImplementation }[] = [],
  ): Promise<number> {
    // A state-of-the-world EDS request names every cluster; leave room for meshes with tens of thousands.
    const server = new Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
    for (const s of services) server.addService(s.definition, s.handlers);
    server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: ServerDuplexStream<DecodedRequest, object>) =>
        this.#accept(call, 'sotw'),
      DeltaAggregatedResources: (call: ServerDuplexStream<DecodedRequest, object>) =>
        this.#accept(call, 'delta'),
    });
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => {
        if (err) {
          reject(err);
          return;
        }
        this.#server = server;
        if (!widenReceiveWindows(server))
          this.#logger.warn('cannot raise the HTTP/2 receive windows; large ACKs will be slow');
        this.#logger.info('ADS server listening', { address: host, port: bound });
        resolve(bound);
      });
    });
  }

  /** Stops: every stream is cancelled (proxies keep their config and reconnect elsewhere or later). */
  close(): Promise<void> {
    this.#queue.close();
    const server = this.#server;
    this.#server = null;
    server?.forceShutdown();
    return Promise.resolve();
  }

  /** Requests a push; debounced and merged with others (see PushQueue). */
  push(req: PushRequest): void {
    this.#stats.pushRequests += 1;
    this.#queue.push(req);
  }

  /** Every connected proxy (one entry per stream) with its per-type sync state. */
  status(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const conn of this.#connections) {
      const s = conn.status();
      if (s) out.push(s);
    }
    // Sorted as people look them up: NAME.NAMESPACE, then id and stream.
    const key = (s: ProxyStatus): string =>
      `${s.node.name}.${s.node.namespace}\u0000${s.node.id}\u0000${s.connectionId}`;
    return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  }

  connections(): ConnectionSummary[] {
    return [...this.#connections].map((c) => ({
      connectionId: c.id,
      proxyId: c.node?.id ?? null,
      peer: c.peer,
      stream: c.kind,
      connectedAt: new Date(c.connectedAt).toISOString(),
      types: [...c.subscriptions().keys()],
    }));
  }

  stats(): PushStats {
    return {
      ...this.#stats,
      responses: { ...this.#stats.responses },
      nacks: { ...this.#stats.nacks },
      encodedResources: this.#encoder.encodedCount,
    };
  }

  get connectedProxies(): number {
    let n = 0;
    for (const c of this.#connections) if (c.node) n++;
    return n;
  }

  /**
   * The newest stream of a proxy named by its node id, `NAME.NAMESPACE` (as istioctl names pods), or its
   * NAME when only one proxy has it.
   */
  findConnection(proxyId: string): XdsConnection | null {
    const open = [...this.#connections]
      .filter((c) => c.node !== null)
      .sort((a, b) => b.connectedAt - a.connectedAt);
    const byId = open.find((c) => c.node!.id === proxyId);
    if (byId) return byId;
    const byPod = open.find((c) => `${c.node!.name}.${c.node!.namespace}` === proxyId);
    if (byPod) return byPod;
    const byName = open.filter((c) => c.node!.name === proxyId);
    return new Set(byName.map((c) => c.node!.id)).size === 1 ? byName[0] : null;
  }

  /** Everything the generator produces now for a connected proxy, per subscribed type; null for an unknown proxy. */
  generatedConfig(proxyId: string): GeneratedConfig | null {
    const conn = this.findConnection(proxyId);
    if (!conn?.node) return null;
    const node = conn.node;
    const subscriptions = conn.subscriptions();
    const types = new Map<string, { name: string; version: string; resource: JsonObject }[]>();
    for (const typeUrl of PUSH_ORDER) {
      if (!subscriptions.has(typeUrl)) continue;
      const names = subscriptions.get(typeUrl) ?? null;
      const entries = [];
      for (const [name, json] of this.#generator.generate(node, typeUrl, names)) {
        if (!conn.wants(typeUrl, name)) continue;
        entries.push({ name, version: this.#encoder.encode(name, json).version, resource: json });
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      types.set(typeUrl, entries);
    }
    return { node, types };
  }

  #accept(call: ServerDuplexStream<DecodedRequest, object>, kind: StreamKind): void {
    this.#nextConnection += 1;
    const id = `${kind}-${this.#nextConnection}`;
    const conn =
      kind === 'sotw'
        ? new SotwConnection(this.#context, call, id, kind)
        : new DeltaConnection(this.#context, call, id, kind);
    this.#connections.add(conn);
    this.#logger.debug('ADS stream opened', { connection: id, peer: conn.peer });
  }

  async #round(push: MergedPush): Promise<void> {
    const roundStart = performance.now();
    this.#encoder.startRound();
    const trigger: PushTrigger = {
      types: push.full ? ALL_TYPES : ENDPOINT_TYPES,
      endpointNames: push.full ? null : push.endpointClusters,
      startedAt: push.startedAt,
      reasons: push.reasons,
    };
    let proxies = 0;
    let sliceStart = performance.now();
    for (const conn of [...this.#connections]) {
      if (conn.closed || !conn.node) continue;
      if (push.affects && !this.#affects(push.affects, conn.node)) continue;
      proxies += 1;
      conn.requestPush(trigger);
      if (performance.now() - sliceStart > ROUND_SLICE_MS) {
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    }
    const event: RoundEvent = {
      full: push.full,
      merged: push.merged,
      reasons: push.reasons,
      proxies,
      queuedMs: roundStart - push.startedAt,
      durationMs: performance.now() - roundStart,
    };
    this.#stats.rounds += 1;
    this.#stats.lastRound = { ...event, at: new Date().toISOString() };
    this.#logger.debug('push round', { ...event });
    this.emit('round', event);
  }

  #affects(predicate: (proxy: ProxyNode) => boolean, node: ProxyNode): boolean {
    try {
      return predicate(node);
    } catch (err) {
      // A faulty predicate must not starve anyone: push to the proxy.
      this.#logger.error('push predicate failed', { proxy: node.id, error: String(err) });
      return true;
    }
  }

  #makeContext(ackTimeoutMs: number, controlPlaneId: string, sendBudgetBytes: number): ConnectionContext {
    return {
      generator: this.#generator,
      encoder: this.#encoder,
      subscriptions: new Subscriptions(),
      budget: new SendBudget(sendBudgetBytes),
      logger: this.#logger,
      ackTimeoutMs,
      controlPlaneId,
      onConnect: (conn) => {
        this.#logger.info('proxy connected', { proxy: conn.node!.id, stream: conn.kind, peer: conn.peer });
        this.emit('connect', conn.node!, conn.id);
      },
      onClose: (conn) => {
        if (!this.#connections.delete(conn)) return;
        if (!conn.node) return;
        this.#logger.info('proxy disconnected', { proxy: conn.node.id, connection: conn.id });
        this.emit('disconnect', conn.node, conn.id);
      },
      onWritten: (conn: XdsConnection, info: SentInfo, writtenAt: number) => {
        const short = SHORT_TYPE_NAME[info.typeUrl];
        this.#stats.responses[short] = (this.#stats.responses[short] ?? 0) + 1;
        this.emit('sent', {
          node: conn.node!,
          stream: conn.kind,
          typeUrl: info.typeUrl,
          version: info.version,
          resources: info.resources,
          removed: info.removed,
          reasons: info.trigger?.reasons ?? null,
          pushSeconds: info.trigger ? (writtenAt - info.trigger.startedAt) / 1000 : null,
        });
      },
      onNack: (conn, typeUrl, message) => {
        const short = SHORT_TYPE_NAME[typeUrl];
        this.#stats.nacks[short] = (this.#stats.nacks[short] ?? 0) + 1;
        this.#logger.warn('proxy rejected config (NACK)', { proxy: conn.node!.id, typeUrl, error: message });
        this.emit('nack', { node: conn.node!, typeUrl, message });
      },
      onInvalid: (_conn, message) => {
        this.#stats.invalidRequests += 1;
        this.emit('invalid', message);
      },
    };
  }
}
