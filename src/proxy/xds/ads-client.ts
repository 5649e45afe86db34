/**
 * The proxy's ADS client: one gRPC stream to the control plane carrying every resource type, in the state
 * of the world (StreamAggregatedResources) or incremental (DeltaAggregatedResources) protocol.
 *
 * - Listener and Cluster are wildcard subscriptions; RouteConfiguration and ClusterLoadAssignment are
 *   requested by the names the applied listeners and clusters need (the sink says which).
 * - Each response is validated and applied as a whole: ACK (the new version, the response's nonce), or NACK
 *   (the previous version, the nonce, error_detail with code INVALID_ARGUMENT and a message naming each bad
 *   resource and field) with the type's configuration left as it was.
 * - Responses are handled one at a time, in arrival order; a response that cannot be decoded at all, or a
 *   framing error, ends the stream.
 * - When the stream ends the proxy keeps serving what it has and reconnects after a jittered exponential
 *   backoff (reset once a stream has lived `stableMs`), resubscribing with what it holds: versions in the
 *   state of the world, initial_resource_versions in delta.
 */
import { createLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import type { JsonObject } from '../../core/json.ts';
import { Backoff } from './backoff.ts';
import { GrpcStatus } from './grpc-stream.ts';
import type { GrpcCallStatus, GrpcStream, GrpcStreamHandlers } from './grpc-stream.ts';
import {
  decodeDeltaResponse,
  decodeResource,
  decodeSotwResponse,
  encodeDeltaRequest,
  encodeSotwRequest,
  resourceName,
} from './messages.ts';
import type { DeltaResponse, ErrorDetail, SotwResponse } from './messages.ts';
import { DELTA_PATH, SOTW_PATH, TYPE_URL, isWildcardType } from './type-urls.ts';
import type { XdsResourceIn, XdsSink } from './types.ts';

/** Longer NACK messages are cut: the control plane records them, and a page of errors says enough. */
const MAX_ERROR_MESSAGE = 16 * 1024;

/**
 * The order of first requests on a stream, as Envoy sends them: clusters and endpoints before listeners and
 * routes; secrets (SDS) once something refers to them.
 */
const SUBSCRIBE_ORDER = [
  TYPE_URL.cluster,
  TYPE_URL.endpoint,
  TYPE_URL.listener,
  TYPE_URL.route,
  TYPE_URL.secret,
];

export interface AdsClientOptions {
  readonly mode: 'sotw' | 'delta';
  /** The node (envoy.config.core.v3.Node as canonical JSON). */
  readonly node: JsonObject;
  /** set_node_on_first_message_only: the node goes in a stream's first request only. */
  readonly nodeOnFirstMessageOnly: boolean;
  /** The wildcard types to subscribe to (Listener, Cluster — those the bootstrap asks for). */
  readonly wildcardTypes: readonly string[];
  readonly sink: XdsSink;
  /** Opens a gRPC stream at `path`; may throw when no endpoint is available (treated as a failed attempt). */
  readonly connect: (path: string, handlers: GrpcStreamHandlers) => GrpcStream;
  readonly backoff?: Backoff;
  /** A stream that lived at least this long resets the backoff (default 5 s). */
  readonly stableMs?: number;
  readonly logger?: Logger;
}

interface TypeState {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  /** Subscribed names (non-wildcard types). */
  names: Set<string>;
  /** Whether a request for this type went out on the current stream. */
  sent: boolean;
  /** The last accepted version (state of the world). */
  version: string;
  /** The last nonce received on the current stream. */
  nonce: string;
  /** The resources held: name → version. */
  readonly known: Map<string, string>;
}

type Response = { kind: 'sotw'; r: SotwResponse } | { kind: 'delta'; r: DeltaResponse };

export class AdsClient {
  private readonly opts: AdsClientOptions;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly states = new Map<string, TypeState>();
  private stream: GrpcStream | null = null;
  private streamId = 0;
  private nodeSent = false;
  private openedAt = 0;
  private queue: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private connected = false;
  /** Streams opened so far (for tests and logs). */
  attempts = 0;

  constructor(opts: AdsClientOptions) {
    this.opts = opts;
    this.log = opts.logger ?? createLogger('xds');
    this.backoff = opts.backoff ?? new Backoff();
    for (const typeUrl of SUBSCRIBE_ORDER) {
      const wildcard = isWildcardType(typeUrl);
      if (wildcard && !opts.wildcardTypes.includes(typeUrl)) continue;
      this.states.set(typeUrl, {
        typeUrl,
        wildcard,
        names: new Set(),
        sent: false,
        version: '',
        nonce: '',
        known: new Map(),
      });
    }
  }

  start(): void {
    this.openStream();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const s = this.stream;
    this.stream = null;
    s?.cancel('the proxy is stopping');
  }

  isConnected(): boolean {
    return this.connected;
  }

  /** Waits for the responses received so far to be handled (tests). */
  idle(): Promise<void> {
    return this.queue;
  }

  private openStream(): void {
    if (this.stopped) return;
    const id = ++this.streamId;
    this.attempts++;
    this.nodeSent = false;
    for (const st of this.states.values()) {
      st.sent = false;
      st.nonce = '';
    }
    this.openedAt = Date.now();
    try {
      this.stream = this.opts.connect(this.opts.mode === 'delta' ? DELTA_PATH : SOTW_PATH, {
        onOpen: () => this.onOpen(id),
        onMessage: (m) => this.onMessage(id, m),
        onClose: (status) => this.onClose(id, status),
      });
    } catch (err) {
      this.onClose(id, { code: GrpcStatus.UNAVAILABLE, message: (err as Error).message });
      return;
    }
    for (const typeUrl of SUBSCRIBE_ORDER) {
      const st = this.states.get(typeUrl);
      if (st === undefined) continue;
      if (!st.wildcard) st.names = new Set(this.opts.sink.resourceNames(typeUrl));
      if (st.wildcard || st.names.size > 0) this.sendInitial(st);
    }
  }

  private onOpen(id: number): void {
    if (id !== this.streamId || this.connected) return;
    this.connected = true;
    this.log.info('connected to the control plane', { attempt: this.attempts });
    this.opts.sink.onConnectionState?.(true);
  }

  private onClose(id: number, status: GrpcCallStatus): void {
    if (id !== this.streamId) return;
    this.stream = null;
    this.connected = false;
    if (this.stopped) return;
    // Every ended or failed stream counts (Envoy's update_failure), connected or not.
    this.opts.sink.onConnectionState?.(false);
    if (Date.now() - this.openedAt >= (this.opts.stableMs ?? 5000)) this.backoff.reset();
    const delay = Math.round(this.backoff.next());
    this.log.warn('ADS stream closed; serving the last configuration', {
      grpcStatus: status.code,
      message: status.message,
      retryInMs: delay,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.openStream();
    }, delay);
    this.retryTimer.unref();
  }

  private onMessage(id: number, bytes: Buffer): void {
    if (id !== this.streamId) return;
    let response: Response;
    try {
      response =
        this.opts.mode === 'delta'
          ? { kind: 'delta', r: decodeDeltaResponse(bytes) }
          : { kind: 'sotw', r: decodeSotwResponse(bytes) };
    } catch (err) {
      // Without a nonce there is nothing to NACK: the stream is unusable.
      this.log.error('undecodable ADS response; ending the stream', { error: (err as Error).message });
      this.stream?.cancel(`undecodable response: ${(err as Error).message}`);
      return;
    }
    this.queue = this.queue
      .then(() =>
        response.kind === 'delta' ? this.handleDelta(id, response.r) : this.handleSotw(id, response.r),
      )
      .catch((err: unknown) => this.log.error('handling an ADS response failed', { error: String(err) }));
  }

  private send(id: number, bytes: Uint8Array): void {
    if (id !== this.streamId || this.stream === null) return;
    this.stream.send(bytes);
  }

  /** The node, if this request should carry it. */
  private nodeFor(): JsonObject | undefined {
    if (this.nodeSent && this.opts.nodeOnFirstMessageOnly) return undefined;
    this.nodeSent = true;
    return this.opts.node;
  }

  private sendInitial(st: TypeState): void {
    st.sent = true;
    if (this.opts.mode === 'delta') {
      const versions: Record<string, string> = {};
      for (const [name, version] of st.known) versions[name] = version;
      this.send(
        this.streamId,
        encodeDeltaRequest({
          node: this.nodeFor(),
          typeUrl: st.typeUrl,
          // A wildcard subscription is an empty list (the legacy form every server understands).
          subscribe: st.wildcard ? [] : [...st.names],
          unsubscribe: [],
          initialResourceVersions: versions,
          responseNonce: '',
        }),
      );
    } else {
      this.send(
        this.streamId,
        encodeSotwRequest({
          node: this.nodeFor(),
          versionInfo: st.version,
          resourceNames: st.wildcard ? [] : [...st.names],
          typeUrl: st.typeUrl,
          responseNonce: '',
        }),
      );
    }
  }

  /** After a change of listeners or clusters: subscribe to the route and endpoint names they need now. */
  private syncSubscriptions(id: number): void {
    if (id !== this.streamId) return;
    for (const st of this.states.values()) {
      if (st.wildcard) continue;
      const wanted = new Set(this.opts.sink.resourceNames(st.typeUrl));
      const added = [...wanted].filter((n) => !st.names.has(n));
      const removed = [...st.names].filter((n) => !wanted.has(n));
      if (added.length === 0 && removed.length === 0) continue;
      st.names = wanted;
      for (const n of removed) st.known.delete(n);
      if (this.opts.mode === 'delta') {
        st.sent = true;
        this.send(
          id,
          encodeDeltaRequest({
            node: this.nodeFor(),
            typeUrl: st.typeUrl,
            subscribe: added,
            unsubscribe: removed,
            responseNonce: '',
          }),
        );
      } else if (st.sent || wanted.size > 0) {
        st.sent = true;
        this.send(
          id,
          encodeSotwRequest({
            node: this.nodeFor(),
            versionInfo: st.version,
            resourceNames: [...wanted],
            typeUrl: st.typeUrl,
            responseNonce: st.nonce,
          }),
        );
      }
    }
  }

  private stateFor(id: number, typeUrl: string): TypeState | undefined {
    if (id !== this.streamId) return undefined; // a response of a stream that has since ended
    const st = this.states.get(typeUrl);
    if (st === undefined) this.log.warn('ignoring a response of a type not subscribed to', { typeUrl });
    return st;
  }

  private async handleSotw(id: number, r: SotwResponse): Promise<void> {
    const st = this.stateFor(id, r.typeUrl);
    if (st === undefined) return;
    st.nonce = r.nonce;
    const resources: XdsResourceIn[] = [];
    r.resources.forEach((raw, i) => {
      try {
        const json = decodeResource(raw, r.typeUrl);
        const name = resourceName(r.typeUrl, json);
        // Routes and endpoints nobody asked for are not applied (Envoy ignores them too).
        if (!st.wildcard && !st.names.has(name)) return;
        resources.push({ name, version: r.versionInfo, json });
      } catch (err) {
        resources.push({ name: `resources[${i}]`, version: r.versionInfo, error: (err as Error).message });
      }
    });
    const present = new Set(resources.map((x) => x.name));
    const removed = st.wildcard ? [...st.known.keys()].filter((n) => !present.has(n)) : [];
    const error = await this.apply(st.typeUrl, r.versionInfo, resources, removed);
    if (error === null) {
      st.version = r.versionInfo;
      if (st.wildcard) st.known.clear();
      for (const x of resources) st.known.set(x.name, x.version);
    }
    this.send(
      id,
      encodeSotwRequest({
        node: this.nodeFor(),
        versionInfo: st.version,
        resourceNames: st.wildcard ? [] : [...st.names],
        typeUrl: st.typeUrl,
        responseNonce: r.nonce,
        ...(error ? { errorDetail: error } : {}),
      }),
    );
    this.syncSubscriptions(id);
  }

  private async handleDelta(id: number, r: DeltaResponse): Promise<void> {
    const st = this.stateFor(id, r.typeUrl);
    if (st === undefined) return;
    st.nonce = r.nonce;
    const resources: XdsResourceIn[] = [];
    for (const res of r.resources) {
      if (!st.wildcard && !st.names.has(res.name)) continue;
      try {
        if (res.hasTtl) throw new Error('resource TTLs are not supported by Weft');
        if (res.resource === null) throw new Error('the resource is missing (only its name was sent)');
        const json = decodeResource(res.resource, r.typeUrl);
        const own = resourceName(r.typeUrl, json);
        if (own !== res.name) throw new Error(`the resource calls itself ${JSON.stringify(own)}`);
        resources.push({ name: res.name, version: res.version, json });
      } catch (err) {
        resources.push({ name: res.name, version: res.version, error: (err as Error).message });
      }
    }
    const removed = r.removed.filter((n) => st.wildcard || st.names.has(n));
    const error = await this.apply(st.typeUrl, r.systemVersionInfo, resources, removed);
    if (error === null) {
      for (const x of resources) st.known.set(x.name, x.version);
      for (const n of removed) st.known.delete(n);
    }
    this.send(
      id,
      encodeDeltaRequest({
        node: this.nodeFor(),
        typeUrl: st.typeUrl,
        subscribe: [],
        unsubscribe: [],
        responseNonce: r.nonce,
        ...(error ? { errorDetail: error } : {}),
      }),
    );
    this.syncSubscriptions(id);
  }

  /** Applies an update; returns null (ACK) or the error to NACK with. */
  private async apply(
    typeUrl: string,
    version: string,
    resources: readonly XdsResourceIn[],
    removed: readonly string[],
  ): Promise<ErrorDetail | null> {
    try {
      await this.opts.sink.apply({ typeUrl, version, resources, removed });
      return null;
    } catch (err) {
      let message = err instanceof Error ? err.message : String(err);
      if (message.length > MAX_ERROR_MESSAGE) message = `${message.slice(0, MAX_ERROR_MESSAGE)}…`;
      this.log.warn('rejected an xDS update (NACK)', { typeUrl, version, error: message });
      return { code: GrpcStatus.INVALID_ARGUMENT, message };
    }
  }
}
