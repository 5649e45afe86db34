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
import type { EncodedResource } from './resources.ts';
import type { DiscoveryResponseMessage } from './service.ts';
import { WILDCARD_TYPES } from './type-state.ts';
import type { TypeState } from './type-state.ts';

function stringList(value: WireJson | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function errorMessage(detail: WireJson | undefined): string | null {
  if (detail === undefined || detail === null || typeof detail !== 'object' || Array.isArray(detail))
    return null;
  return typeof detail.message === 'string' ? detail.message : '';
}

function sameNames(state: TypeState, wildcard: boolean, names: readonly string[]): boolean {
  if (state.wildcard !== wildcard || state.names.size !== names.length) return false;
  return names.every((n) => state.names.has(n));
}

export class SotwConnection extends XdsConnection {
  protected handleRequest(req: RequestJson): void {
    this.identify(req);
    const typeUrl = typeof req.type_url === 'string' ? req.type_url : '';
    if (!this.served(typeUrl)) return;
    const requested = stringList(req.resource_names);
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (requested.length === 0 || requested.includes('*'));
    const names = requested.filter((n) => n !== '*');
    let state = this.typeState(typeUrl);
    if (!state) {
      // First request for this type on this stream (a reconnecting proxy may send an old version and nonce:
      // this stream has sent nothing, so it gets the full state).
      state = this.addTypeState(typeUrl);
      this.#subscribe(state, wildcard, names);
      this.respond(state, null, true);
      return;
    }
    const nonce = typeof req.response_nonce === 'string' ? req.response_nonce : '';
    if (nonce !== state.lastSentNonce) {
      this.ctx.logger.debug('ignoring request with a stale nonce', { proxy: this.node?.id, typeUrl, nonce });
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
    if (!sameNames(state, wildcard, names)) {
      this.#subscribe(state, wildcard, names);
      this.respond(state, null, false);
    }
    this.afterReply();
  }

  protected respond(state: TypeState, trigger: PushTrigger | null, force: boolean): void {
    const current = this.generate(state);
    if (!current) return;
    let resources: EncodedResource[];
    if (state.isWildcardType) {
      let changed = current.size !== state.held.size;
      for (const [name, r] of current) if (state.held.get(name) !== r.version) changed = true;
      if (!changed && !force) return;
      resources = [...current.values()];
      for (const name of state.held.keys()) if (!current.has(name)) state.held.delete(name);
    } else {
      resources = [...current.values()].filter((r) => state.held.get(r.name) !== r.version);
      for (const name of state.held.keys()) if (!current.has(name)) state.held.delete(name);
      if (resources.length === 0 && !force) return;
    }
    for (const r of resources) state.held.set(r.name, r.version);
    const version = state.held.version;
    const nonce = this.nextNonce();
    const message: DiscoveryResponseMessage = {
      version_info: version,
      resources: resources.map((r) => r.any),
      type_url: state.typeUrl,
      nonce,
      control_plane: { identifier: this.ctx.controlPlaneId },
    };
    this.send(state, message, {
      typeUrl: state.typeUrl,
      version,
      nonce,
      resources: resources.length,
      removed: 0,
      trigger,
    });
  }

  #subscribe(state: TypeState, wildcard: boolean, names: readonly string[]): void {
    state.wildcard = wildcard;
    state.names.clear();
    for (const n of names) state.names.add(n);
    // A named resource dropped from the subscription is forgotten: subscribing again sends it again.
    if (!wildcard) for (const name of state.held.keys()) if (!state.names.has(name)) state.held.delete(name);
  }
}
