/**
 * State-of-the-world ADS (StreamAggregatedResources). Per Envoy's xDS protocol:
 * - Listener and Cluster responses carry the whole set the proxy subscribed to (empty names or `*` = all);
 *   a resource missing from one means it was removed.
 * - RouteConfiguration, ClusterLoadAssignment and Secret responses carry only the subscribed resources that
 *   changed; absence means nothing (the proxy drops them when no listener or cluster refers to them).
 * - A request whose response_nonce is not the latest one sent for its type is stale and ignored: the proxy
 *   will answer the latest response with its current subscription anyway.
 * - error_detail marks a NACK: recorded, and the proxy keeps its last good config; the same content is not
 *   sent again (it would be NACKed again) — the next change is.
 */
import type { WireJson } from '../../api/envoy/wire.ts';
import { XdsConnection } from './connection.ts';
import type { PushTrigger, RequestJson } from './connection.ts';
import type { EncodedSet } from './resources.ts';
import { discoveryResponseBytes } from './response-codec.ts';
import { decodeSotwRequest } from './service.ts';
import type { DecodedRequest, DiscoveryResponseMessage } from './service.ts';
import type { Subscription } from './subscriptions.ts';
import { WILDCARD_TYPES } from './type-state.ts';
import type { TypeState } from './type-state.ts';
import { TYPE_URL } from './types.ts';
import { ResourceNames as Names } from './request-codec.ts';

const EMPTY_NAMES = new Names(new Uint8Array(0));

function errorMessage(detail: WireJson | undefined): string | null {
  if (detail === undefined || detail === null || typeof detail !== 'object' || Array.isArray(detail))
    return null;
  return typeof detail.message === 'string' ? detail.message : '';
}

function sameNames(state: TypeState, wildcard: boolean, names: ReadonlySet<string>): boolean {
  if (state.wildcard !== wildcard) return false;
  if (state.names === names) return true;
  if (state.names.size !== names.size) return false;
  for (const n of names) if (!state.names.has(n)) return false;
  return true;
}

export class SotwConnection extends XdsConnection {
  /** Decodes as the request arrives, and turns its names into a shared subscription at once (see #onData). */
  protected override decodeRaw(raw: Uint8Array): DecodedRequest {
    const known: Subscription[] = [];
    for (const state of this.types.values()) if (state.subscription) known.push(state.subscription);
    const decoded = decodeSotwRequest(
      raw,
      known.map((k) => k.bytes),
    );
    if (decoded.json === undefined) return decoded;
    const names = decoded.names ?? EMPTY_NAMES;
    const subscription =
      known.find(
        (k) => k.bytes.length === names.bytes.length && Buffer.compare(k.bytes, names.bytes) === 0,
      ) ?? this.ctx.subscriptions.intern(names);
    return { json: decoded.json, subscription };
  }

  protected handleRequest(req: RequestJson, received?: Subscription): void {
    this.identify(req);
    const typeUrl = typeof req.type_url === 'string' ? req.type_url : '';
    if (!this.served(typeUrl)) return;
    let state = this.typeState(typeUrl);
    const first = !state;
    state ??= this.addTypeState(typeUrl);
    const nonce = typeof req.response_nonce === 'string' ? req.response_nonce : '';
    if (!first && nonce !== state.lastSentNonce) {
      this.ctx.logger.debug('ignoring request with a stale nonce', { proxy: this.node?.id, typeUrl, nonce });
      return;
    }
    const subscription = received ?? this.ctx.subscriptions.intern(EMPTY_NAMES);
    // An ACK repeats the subscription it was sent with: the same shared subscription, nothing to compare.
    const sameBytes = state.subscription === subscription;
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (subscription.names.size === 0 || subscription.star);
    if (first) {
      // First request for this type on this stream (a reconnecting proxy may send an old version and nonce:
      // this stream has sent nothing, so it gets the full state).
      this.#subscribe(state, wildcard, subscription);
      this.respond(state, null, true);
      return;
    }
    if (state.awaitingNonce === nonce) {
      const nack = errorMessage(req.error_detail);
      if (nack !== null) {
        state.recordNack(nack);
        this.ctx.onNack(this, typeUrl, nack);
      } else {
        state.recordAck(typeof req.version_info === 'string' ? req.version_info : '', Date.now());
      }
    }
    if (!sameBytes) {
      if (sameNames(state, wildcard, subscription.names)) {
        state.subscription = subscription;
        state.names = subscription.names;
      } else {
        this.#subscribe(state, wildcard, subscription);
        this.respond(state, null, false);
      }
    }
    this.afterReply();
  }

  protected respond(state: TypeState, trigger: PushTrigger | null, force: boolean): void {
    const changed = state.typeUrl === TYPE_URL.endpoint ? trigger?.endpointNames : null;
    if (changed && !state.wildcard) {
      // The endpoint fast path: regenerate only the named assignments, send those whose content changed.
      const names = this.changedNames(state, changed);
      if (names.size === 0) return;
      const update = this.generateNames(state, names);
      if (!update) return;
      const t = state.held.state.withUpdate(update, names);
      state.held.move(t);
      if (t.changed.size > 0) this.#send(state, trigger, t.changed);
      this.rejoin(state);
      return;
    }
    const current = this.generate(state);
    if (!current) return;
    const t = state.held.state.toSet(current);
    const same = t.changed.size === 0 && state.held.size === current.size;
    state.held.move(t);
    if (state.isWildcardType) {
      // Listener and Cluster: the whole set, and only when something in it changed.
      if (!same || force) this.#send(state, trigger, current);
    } else if (t.changed.size > 0 || force) {
      // Routes and endpoints: only what changed; a resource gone needs no message (nothing refers to it).
      this.#send(state, trigger, t.changed);
    }
  }

  /** Sends all of `resources` (a set shared between proxies: its encoding is reused). */
  #send(state: TypeState, trigger: PushTrigger | null, resources: EncodedSet): void {
    const version = state.held.version;
    const nonce = this.nextNonce();
    const message: DiscoveryResponseMessage = {
      version_info: version,
      resources: [...resources.resources.values()].map((r) => r.any),
      type_url: state.typeUrl,
      nonce,
      control_plane: { identifier: this.ctx.controlPlaneId },
      encodedSet: resources,
    };
    this.send(state, discoveryResponseBytes(message), {
      typeUrl: state.typeUrl,
      version,
      nonce,
      resources: resources.size,
      removed: 0,
      trigger,
    });
  }

  #subscribe(state: TypeState, wildcard: boolean, subscription: Subscription): void {
    state.wildcard = wildcard;
    state.subscription = subscription;
    state.names = subscription.names;
    // A named resource dropped from the subscription is forgotten: subscribing again sends it again.
    if (!wildcard) state.held.retain((name) => state.names.has(name));
  }
}
