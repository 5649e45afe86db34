/**
 * Incremental ("delta") ADS (DeltaAggregatedResources). Per Envoy's xDS protocol:
 * - The server tracks what the proxy holds (name → version); initial_resource_versions seeds it on a
 *   reconnect, so unchanged resources are not sent again.
 * - resource_names_subscribe / _unsubscribe change the subscription at any time, whatever the nonce.
 *   Listener and Cluster are wildcard when the first request subscribes to nothing or to `*`.
 * - A response carries only resources whose version (content hash) differs from what the proxy holds, and
 *   removed_resources for those it holds that no longer exist — or that it subscribed to and do not exist.
 * - response_nonce pairs an ACK/NACK (error_detail) with the latest response; an older nonce is ignored.
 */
import type { WireJson } from '../../api/envoy/wire.ts';
import { isObject } from '../../core/json.ts';
import { XdsConnection } from './connection.ts';
import type { PushTrigger, RequestJson } from './connection.ts';
import type { EncodedSet, HeldTransition } from './resources.ts';
import { deltaDiscoveryResponseBytes } from './response-codec.ts';
import { decodeDeltaRequest } from './service.ts';
import type { DecodedRequest, DeltaDiscoveryResponseMessage } from './service.ts';
import type { Subscription } from './subscriptions.ts';
import type { TypeState } from './type-state.ts';
import { TYPE_URL } from './types.ts';

function stringList(value: WireJson | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

const NO_NAMES: ReadonlySet<string> = new Set();

/** Per generated set and subscription: the subscribed names it lacks (computed once for proxies that share both). */
const absentLists = new WeakMap<EncodedSet, WeakMap<ReadonlySet<string>, string[]>>();

export class DeltaConnection extends XdsConnection {
  /**
   * Decodes as the request arrives; resource_names_subscribe becomes a shared subscription at once, so the
   * requests waiting in the queue (a connect storm) hold one list per distinct subscription, not one per proxy.
   */
  protected override decodeRaw(raw: Uint8Array): DecodedRequest {
    const decoded = decodeDeltaRequest(raw);
    if (decoded.json === undefined || !decoded.names || decoded.names.empty) return decoded;
    return { json: decoded.json, subscription: this.ctx.subscriptions.intern(decoded.names) };
  }

  /** Subscribed names `current` lacks: for the fast path, among the names it regenerated. */
  #absent(state: TypeState, current: EncodedSet, fastPath: HeldTransition | null): readonly string[] {
    const names = fastPath ? (current.filter ?? state.names) : state.names;
    let byNames = absentLists.get(current);
    if (!byNames) {
      byNames = new WeakMap();
      absentLists.set(current, byNames);
    }
    let list = byNames.get(names);
    if (!list) {
      list = [];
      for (const name of names) if (!current.resources.has(name)) list.push(name);
      byNames.set(names, list);
    }
    return list;
  }

  protected handleRequest(req: RequestJson, received?: Subscription): void {
    this.identify(req);
    const typeUrl = typeof req.type_url === 'string' ? req.type_url : '';
    if (!this.served(typeUrl)) return;
    const subscribeNames = received?.names ?? NO_NAMES;
    const subscribeStar = received?.star ?? false;
    const unsubscribe = stringList(req.resource_names_unsubscribe);
    let state = this.typeState(typeUrl);
    let first = false;
    if (!state) {
      first = true;
      state = this.addTypeState(typeUrl);
      if (state.isWildcardType && (subscribeNames.size === 0 || subscribeStar)) state.wildcard = true;
      const initial = req.initial_resource_versions;
      if (isObject(initial)) {
        state.held.apply(
          Object.entries(initial)
            .filter((e): e is [string, string] => typeof e[1] === 'string')
            .map(([name, version]) => [name, version] as const),
        );
      }
    }

    const nonce = typeof req.response_nonce === 'string' ? req.response_nonce : '';
    if (nonce !== '' && nonce === state.awaitingNonce) {
      const detail = req.error_detail;
      if (isObject(detail)) {
        const message = typeof detail.message === 'string' ? detail.message : '';
        state.recordNack(message);
        this.ctx.onNack(this, typeUrl, message);
      } else {
        state.recordAck(state.lastSentVersion, Date.now());
      }
    } else if (nonce !== '' && nonce !== state.lastSentNonce) {
      this.ctx.logger.debug('stale nonce; not an ACK', { proxy: this.node?.id, typeUrl, nonce });
    }

    let added = false;
    const removedNames: string[] = [];
    for (const name of unsubscribe) {
      if (name === '*') {
        state.wildcard = false;
      } else {
        removedNames.push(name);
        state.reportedAbsent.delete(name);
      }
    }
    const intern = (names: ReadonlySet<string>): ReadonlySet<string> =>
      this.ctx.subscriptions.internSet(names);
    if (removedNames.length > 0) state.changeNames([], removedNames, intern);
    // Whatever the proxy no longer subscribes to, it drops: forget it, so subscribing again resends it.
    if (unsubscribe.length > 0) state.held.retain((name) => state.wants(name));
    if (subscribeStar && state.isWildcardType && !state.wildcard) {
      state.wildcard = true;
      added = true;
    }
    if (received) state.subscription = received; // keeps the shared list alive for the next proxy that sends it
    if (state.names.size === 0 && subscribeNames.size > 0) {
      // A first subscription (the common case): the shared set itself, no copy.
      state.names = intern(subscribeNames);
      added = true;
    } else {
      const addedNames: string[] = [];
      for (const name of subscribeNames) if (!state.names.has(name)) addedNames.push(name);
      if (addedNames.length > 0) {
        state.changeNames(addedNames, [], intern);
        added = true;
      }
    }
    if (first || added) this.respond(state, null, first);
    this.afterReply();
  }

  protected respond(state: TypeState, trigger: PushTrigger | null, force: boolean): void {
    const changedHint = state.typeUrl === TYPE_URL.endpoint ? trigger?.endpointNames : null;
    let t: HeldTransition;
    let current: EncodedSet;
    if (changedHint && !state.wildcard) {
      // The endpoint fast path: only these names may have changed.
      const names = this.changedNames(state, changedHint);
      if (names.size === 0) return;
      const update = this.generateNames(state, names);
      if (!update) return;
      t = state.held.state.withUpdate(update, names);
      current = update;
    } else {
      const generated = this.generate(state);
      if (!generated) return;
      t = state.held.state.toSet(generated);
      current = generated;
    }
    const removed = [...t.removed];
    for (const name of t.removed) if (state.names.has(name)) state.reportedAbsent.add(name);
    // Subscribed names that do not exist are reported once (their list is shared per subscription and result).
    for (const name of this.#absent(state, current, changedHint ? t : null)) {
      if (state.reportedAbsent.has(name) || removed.includes(name)) continue;
      removed.push(name);
      state.reportedAbsent.add(name);
    }
    if (t.changed.size === 0 && removed.length === 0 && !force) {
      state.held.move(t);
      if (changedHint) this.rejoin(state);
      return;
    }
    for (const name of t.changed.resources.keys()) state.reportedAbsent.delete(name);
    state.held.move(t);
    const changed = [...t.changed.resources.values()];
    const version = state.held.version;
    const nonce = this.nextNonce();
    const message: DeltaDiscoveryResponseMessage = {
      system_version_info: version,
      resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: state.typeUrl,
      removed_resources: removed,
      nonce,
      control_plane: { identifier: this.ctx.controlPlaneId },
      encodedSet: t.changed,
    };
    this.send(state, deltaDiscoveryResponseBytes(message), {
      typeUrl: state.typeUrl,
      version,
      nonce,
      resources: changed.length,
      removed: removed.length,
      trigger,
    });
    if (changedHint) this.rejoin(state);
  }
}
