/**
 * One ADS stream. Holds the proxy's node, its per-type state, and the push gate: at most one push in
 * flight per stream — a push waits until the proxy has answered (ACK or NACK) every response it was sent,
 * or until the ACK timeout, and then sends the latest state. Pushes that arrive while waiting merge into
 * one; a proxy never gets a queue of stale pushes. Replies to the proxy's own requests (first subscription,
 * new names) are not gated: the proxy is waiting for them.
 *
 * The state-of-the-world and delta variants subclass this with their request handling and response shape.
 */
import { performance } from 'node:perf_hooks';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { WireJson } from '../../api/envoy/wire.ts';
import type { Logger } from '../../core/logger.ts';
import { NodeError, parseProxyNode } from './node.ts';
import type { EncodedSet, ResourceEncoder } from './resources.ts';
import type { DecodedRequest } from './service.ts';
import type { SendBudget } from './send-budget.ts';
import type { ResponseBytes } from './response-codec.ts';
import type { Subscription, Subscriptions } from './subscriptions.ts';
import { KNOWN_TYPES, TypeState } from './type-state.ts';
import type { TypeStatus } from './type-state.ts';
import { PUSH_ORDER, TYPE_URL } from './types.ts';
import type { ProxyNode, XdsGenerator } from './types.ts';

export type StreamKind = 'sotw' | 'delta';
export type RequestJson = { [key: string]: WireJson };

/** A push as one connection sees it: the types to regenerate, when the oldest merged push() was made, why. */
export interface PushTrigger {
  types: ReadonlySet<string>;
  /**
   * For ClusterLoadAssignment: the only names that may have changed (the endpoint fast path: just these are
   * regenerated); null = any may have.
   */
  endpointNames: ReadonlySet<string> | null;
  /** performance.now() of the oldest push() merged into this one. */
  startedAt: number;
  reasons: readonly string[];
}

export interface SentInfo {
  typeUrl: string;
  version: string;
  nonce: string;
  resources: number;
  removed: number;
  /** The push that caused this response; null for a reply to the proxy's request. */
  trigger: PushTrigger | null;
}

/** What connections need from the server that owns them. */
export interface ConnectionContext {
  readonly generator: XdsGenerator;
  readonly encoder: ResourceEncoder;
  readonly subscriptions: Subscriptions;
  readonly budget: SendBudget;
  readonly logger: Logger;
  readonly ackTimeoutMs: number;
  readonly controlPlaneId: string;
  onConnect(conn: XdsConnection): void;
  onClose(conn: XdsConnection): void;
  onWritten(conn: XdsConnection, info: SentInfo, writtenAt: number): void;
  onNack(conn: XdsConnection, typeUrl: string, message: string): void;
  onInvalid(conn: XdsConnection, message: string): void;
}

/** A request the server refuses; the stream ends with INVALID_ARGUMENT and this message. */
export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

export interface ProxyStatus {
  connectionId: string;
  peer: string;
  node: ProxyNode;
  connectedAt: string;
  stream: StreamKind;
  types: TypeStatus[];
}

/** How long the first requests of a stream are gathered before they are answered (in push order). */
const FIRST_BATCH_WINDOW_MS = 20;

const EMPTY_SET: ReadonlyMap<string, never> = new Map<string, never>();

function pushRank(typeUrl: string): number {
  const i = PUSH_ORDER.indexOf(typeUrl);
  return i < 0 ? PUSH_ORDER.length : i;
}

/** The endpoint names of merged triggers: a restriction holds only if every trigger that touches endpoints has one. */
function mergeEndpointNames(a: PushTrigger, b: PushTrigger): ReadonlySet<string> | null {
  const aTouches = a.types.has(TYPE_URL.endpoint);
  const bTouches = b.types.has(TYPE_URL.endpoint);
  if (!aTouches) return b.endpointNames;
  if (!bTouches) return a.endpointNames;
  if (!a.endpointNames || !b.endpointNames) return null;
  return new Set([...a.endpointNames, ...b.endpointNames]);
}

function mergeTriggers(a: PushTrigger | null, b: PushTrigger): PushTrigger {
  if (!a) return b;
  const reasons = [...new Set([...a.reasons, ...b.reasons])].slice(0, 16);
  return {
    types: new Set([...a.types, ...b.types]),
    endpointNames: mergeEndpointNames(a, b),
    startedAt: Math.min(a.startedAt, b.startedAt),
    reasons,
  };
}

/**
 * Overrides a proxy's held state gathers before it is re-expressed over the current set (see rejoin()). Each
 * attempt walks the whole set (thousands of entries) for this proxy's state, so not often: a few hundred
 * overrides cost a few tens of KB per proxy, a flattened copy hundreds.
 */
const REJOIN_AFTER = 256;
/** How long one rejoin base serves every proxy with the same subscription and namespace (see #rejoinBase). */
const REJOIN_BASE_MS = 5000;
/** Endpoint subscriptions → namespace and locality → the current rejoin base (what EDS assignments vary by). */
const rejoinBases = new WeakMap<ReadonlySet<string>, Map<string, { set: EncodedSet; at: number }>>();

export abstract class XdsConnection {
  readonly id: string;
  readonly kind: StreamKind;
  readonly peer: string;
  readonly connectedAt = Date.now();
  node: ProxyNode | null = null;
  protected readonly ctx: ConnectionContext;
  protected readonly types = new Map<string, TypeState>();
  readonly #call: ServerDuplexStream<DecodedRequest, object>;
  #nonce = 0;
  #queue: { json: RequestJson; subscription?: Subscription }[] = [];
  #drainScheduled = false;
  #pending: PushTrigger | null = null;
  #ackTimer: NodeJS.Timeout | null = null;
  #waitingForRoom = false;
  #ended = false;
  #closed = false;
  readonly #warnedTypes = new Set<string>();

  constructor(
    ctx: ConnectionContext,
    call: ServerDuplexStream<DecodedRequest, object>,
    id: string,
    kind: StreamKind,
  ) {
    this.ctx = ctx;
    this.#call = call;
    this.id = id;
    this.kind = kind;
    this.peer = call.getPeer();
    call.on('data', (req: DecodedRequest) => this.#onData(req));
    // The proxy half-closed: nothing more will be asked, so finish our side with OK.
    call.on('end', () => {
      this.#ended = true;
      call.end();
    });
    call.on('cancelled', () => this.#close());
    call.on('close', () => this.#close());
    call.on('error', (err: Error) => {
      this.ctx.logger.debug('stream error', { connection: this.id, error: err.message });
      this.#close();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Handles one decoded request; throws RequestError/NodeError for a request the stream cannot go on after.
   * `subscription`: state of the world, resource_names as a shared subscription (not in `req`).
   */
  protected abstract handleRequest(req: RequestJson, subscription?: Subscription): void;

  /** Generates `state`'s type for this proxy and sends what changed; `force` sends even when nothing did. */
  protected abstract respond(state: TypeState, trigger: PushTrigger | null, force: boolean): void;

  status(): ProxyStatus | null {
    if (!this.node) return null;
    const types = [...this.types.values()]
      .sort((a, b) => pushRank(a.typeUrl) - pushRank(b.typeUrl))
      .map((t) => t.status());
    return {
      connectionId: this.id,
      peer: this.peer,
      node: this.node,
      connectedAt: new Date(this.connectedAt).toISOString(),
      stream: this.kind,
      types,
    };
  }

  /** The subscription of each type this proxy asked for: type URL → names, or null for "all". */
  subscriptions(): Map<string, ReadonlySet<string> | null> {
    const out = new Map<string, ReadonlySet<string> | null>();
    for (const [typeUrl, state] of this.types) {
      out.set(typeUrl, state.isWildcardType ? null : new Set(state.names));
    }
    return out;
  }

  /** Whether a generated resource of this type is one the proxy subscribed to. */
  wants(typeUrl: string, name: string): boolean {
    return this.types.get(typeUrl)?.wants(name) ?? false;
  }

  /** Whether a response is waiting for the proxy's ACK or NACK. */
  inFlight(): boolean {
    for (const state of this.types.values()) if (state.awaitingNonce !== null) return true;
    return false;
  }

  /** Asks for a push; it goes out now, or when the response in flight is answered (or times out). */
  requestPush(trigger: PushTrigger): void {
    if (this.#closed || !this.node) return;
    this.#pending = mergeTriggers(this.#pending, trigger);
    if (!this.inFlight()) {
      this.#flush();
      return;
    }
    if (this.#ackTimer) return;
    let oldest = Infinity;
    for (const state of this.types.values()) {
      if (state.awaitingNonce !== null) oldest = Math.min(oldest, state.lastSentAt);
    }
    const delay = Math.max(0, oldest + this.ctx.ackTimeoutMs - Date.now());
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = null;
      this.ctx.logger.warn('proxy did not answer in time; pushing anyway', {
        proxy: this.node?.id,
        connection: this.id,
        ackTimeoutMs: this.ctx.ackTimeoutMs,
      });
      this.#flush();
    }, delay);
  }

  /** Ends the stream with an error status. */
  fail(message: string, code: GrpcStatus = GrpcStatus.INVALID_ARGUMENT): void {
    if (this.#ended || this.#closed) return;
    this.#ended = true;
    this.ctx.logger.warn('ending ADS stream', { connection: this.id, proxy: this.node?.id, error: message });
    if (code === GrpcStatus.INVALID_ARGUMENT) this.ctx.onInvalid(this, message);
    this.#call.emit('error', { code, details: message });
    this.#close();
  }

  protected nextNonce(): string {
    this.#nonce += 1;
    return this.#nonce.toString(36);
  }

  protected typeState(typeUrl: string): TypeState | undefined {
    return this.types.get(typeUrl);
  }

  protected addTypeState(typeUrl: string): TypeState {
    const state = new TypeState(typeUrl);
    this.types.set(typeUrl, state);
    return state;
  }

  /** Parses the node of the first request and announces the proxy. */
  protected identify(req: RequestJson): void {
    if (this.node) return;
    this.node = parseProxyNode(req.node);
    this.ctx.onConnect(this);
  }

  /** A type URL this server serves; others are logged once and ignored, as Envoy does not wait on them. */
  protected served(typeUrl: string): boolean {
    if (typeUrl === '') throw new RequestError('type_url is required on an aggregated stream');
    if (KNOWN_TYPES.has(typeUrl)) return true;
    if (!this.#warnedTypes.has(typeUrl)) {
      this.#warnedTypes.add(typeUrl);
      this.ctx.logger.warn('ignoring request for a type Weft does not serve', {
        proxy: this.node?.id,
        typeUrl,
      });
    }
    return false;
  }

  /** After an ACK or NACK: a push that waited for it goes out now. */
  protected afterReply(): void {
    if (this.#pending && !this.inFlight()) this.#flush();
  }

  /**
   * The resources of `state`'s type this proxy should hold now, encoded; null when the generator failed or
   * produced a resource that cannot be encoded — then nothing is sent for the type, and the proxy keeps what it has.
   * Proxies whose generator output and subscription are the same objects get the same EncodedSet.
   */
  protected generate(state: TypeState): EncodedSet | null {
    const node = this.node!;
    try {
      if (!state.wildcard && state.names.size === 0) return this.ctx.encoder.encodeSet(EMPTY_SET, null);
      // A named subscription to a wildcard type (gRPC's xDS client asks for its Listener by name) gets those names.
      const names = state.wildcard ? null : state.names;
      return this.ctx.encoder.encodeSet(this.ctx.generator.generate(node, state.typeUrl, names), names);
    } catch (err) {
      this.ctx.logger.error('cannot generate resources; the proxy keeps its current ones', {
        proxy: node.id,
        typeUrl: state.typeUrl,
        error: (err as Error).message,
      });
      return null;
    }
  }

  /**
   * After an endpoint fast-path push: once a proxy's held state has gathered REJOIN_AFTER overrides, it is
   * re-expressed over what is current (shared by every proxy with this subscription): the shared state itself
   * when the proxy is up to date, else a few overrides of it (see HeldResources.rejoin).
   */
  protected rejoin(state: TypeState): void {
    const own = state.held.state.own.size;
    if (own < REJOIN_AFTER) return;
    const base = this.#rejoinBase(state);
    if (!base || state.rejoinedOnto === base) return;
    state.rejoinedOnto = base;
    // Any rebase with fewer overrides than now is a gain; failing one leaves the overrides to grow until the held
    // set flattens into a private copy of thousands of entries.
    state.held.rejoin(base, own - 1);
  }

  /**
   * The set proxies with this subscription and namespace rejoin onto: what was current when it was last taken,
   * renewed at most every REJOIN_BASE_MS. Rejoining onto whatever is current at each proxy's own moment would keep
   * a base alive per snapshot (thousands of entries each) under a stream of changes; any base is correct (what
   * differs from it becomes overrides), so a slightly stale shared one costs a few more overrides and no copies.
   */
  #rejoinBase(state: TypeState): EncodedSet | null {
    let byCaller = rejoinBases.get(state.names);
    if (!byCaller) {
      byCaller = new Map();
      rejoinBases.set(state.names, byCaller);
    }
    // Endpoint views differ by namespace (its DestinationRules) and, under a locality policy, by the caller's
    // locality: a base taken by a proxy of another zone would differ in every locality-dependent assignment.
    const { region, zone, subZone } = this.node!.locality;
    const key = `${this.node!.namespace}|${region}/${zone}/${subZone}`;
    const now = performance.now();
    const known = byCaller.get(key);
    if (known && now - known.at < REJOIN_BASE_MS) return known.set;
    const set = this.generate(state);
    if (set) byCaller.set(key, { set, at: now });
    return set;
  }

  /**
   * The endpoint fast path: the subscribed names among `changed` — `changed` itself when the proxy subscribed to
   * all of them (the usual case), so proxies share the generated and encoded result.
   */
  protected changedNames(state: TypeState, changed: ReadonlySet<string>): ReadonlySet<string> {
    let all = true;
    for (const n of changed) {
      if (!state.wants(n)) {
        all = false;
        break;
      }
    }
    if (all) return changed;
    const out = new Set<string>();
    for (const n of changed) if (state.wants(n)) out.add(n);
    return out;
  }

  /** Only these names of `state`'s type, encoded (see generate()). */
  protected generateNames(state: TypeState, names: ReadonlySet<string>): EncodedSet | null {
    const node = this.node!;
    try {
      if (names.size === 0) return this.ctx.encoder.encodeSet(EMPTY_SET, null);
      return this.ctx.encoder.encodeSet(this.ctx.generator.generate(node, state.typeUrl, names), names);
    } catch (err) {
      this.ctx.logger.error('cannot generate resources; the proxy keeps its current ones', {
        proxy: node.id,
        typeUrl: state.typeUrl,
        error: (err as Error).message,
      });
      return null;
    }
  }

  /**
   * Writes a response (already encoded); the send is recorded on `state` and reported once the bytes are handed
   * to the stream.
   */
  protected send(state: TypeState, message: ResponseBytes, info: SentInfo): void {
    if (this.#ended || this.#closed) return;
    state.recordSent(info.version, info.nonce, Date.now(), info.trigger !== null);
    const release = this.ctx.budget.take(message.byteLength);
    try {
      this.#call.write(message, () => {
        release();
        this.ctx.onWritten(this, info, performance.now());
      });
    } catch (err) {
      release();
      this.ctx.logger.error('cannot write a response', {
        proxy: this.node?.id,
        error: (err as Error).message,
      });
      this.fail('internal error writing a response', GrpcStatus.INTERNAL);
    }
  }

  #flush(): void {
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    if (this.ctx.budget.full && this.#pending && !this.#closed) {
      // Too many bytes waiting to go out: push when there is room (the latest state, as always).
      if (!this.#waitingForRoom) {
        this.#waitingForRoom = true;
        this.ctx.budget.wait(() => {
          this.#waitingForRoom = false;
          const pending = this.#pending;
          this.#pending = null;
          if (pending) this.requestPush(pending);
        });
      }
      return;
    }
    const trigger = this.#pending;
    this.#pending = null;
    if (!trigger || this.#closed) return;
    for (const typeUrl of PUSH_ORDER) {
      const state = this.types.get(typeUrl);
      if (state && trigger.types.has(typeUrl)) this.respond(state, trigger, false);
    }
  }

  /** Decodes a request the service left encoded (state of the world). */
  protected decodeRaw(raw: Uint8Array): DecodedRequest {
    return { error: `cannot decode a ${raw.length}-byte request on a ${this.kind} stream` };
  }

  #onData(received: DecodedRequest): void {
    if (this.#ended || this.#closed) return;
    const req = received.raw !== undefined ? this.decodeRaw(received.raw) : received;
    if (req.raw !== undefined) {
      this.fail('request decoded twice');
      return;
    }
    if (req.error !== undefined) {
      this.fail(req.error);
      return;
    }
    // Only what handling needs is queued (never the request's bytes: a thousand proxies' first EDS requests
    // waiting for their answers would be hundreds of megabytes).
    this.#queue.push(
      req.subscription ? { json: req.json, subscription: req.subscription } : { json: req.json },
    );
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    // Requests that arrive together are handled in push order. A proxy sends its first requests (CDS and LDS,
    // say) back to back, but grpc-js hands them over one by one: the first batch waits a moment to gather them.
    if (this.node) setImmediate(() => this.#drain());
    else setTimeout(() => this.#drain(), FIRST_BATCH_WINDOW_MS);
  }

  #drain(): void {
    if (this.ctx.budget.full && !this.#closed) {
      // Answers may be large (a first subscription): handle the requests when there is room.
      this.ctx.budget.wait(() => this.#drain());
      return;
    }
    this.#drainScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    // The node rides on the first request sent, which need not be the first handled.
    if (!this.node && !this.#attempt(() => this.identify(batch[0].json))) return;
    const rank = (r: RequestJson): number => pushRank(typeof r.type_url === 'string' ? r.type_url : '');
    batch.sort((a, b) => rank(a.json) - rank(b.json));
    for (const req of batch) {
      if (this.#ended || this.#closed) return;
      this.#attempt(() => this.handleRequest(req.json, req.subscription));
    }
  }

  #attempt(action: () => void): boolean {
    try {
      action();
      return true;
    } catch (err) {
      if (err instanceof RequestError || err instanceof NodeError) {
        this.fail(err.message);
      } else {
        this.ctx.logger.error('ADS request failed', { proxy: this.node?.id, error: (err as Error).stack });
        this.fail('internal error', GrpcStatus.INTERNAL);
      }
      return false;
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    this.#pending = null;
    this.ctx.onClose(this);
  }
}
