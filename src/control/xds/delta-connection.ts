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
import type { DeltaDiscoveryResponseMessage } from './service.ts';
import type { TypeState } from './type-state.ts';

function stringList(value: WireJson | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export class DeltaConnection extends XdsConnection {
  protected handleRequest(req: RequestJson): void {
    this.identify(req);
    const typeUrl = typeof req.type_url === 'string' ? req.type_url : '';
    if (!this.served(typeUrl)) return;
    const subscribe = stringList(req.resource_names_subscribe);
    const unsubscribe = stringList(req.resource_names_unsubscribe);
    let state = this.typeState(typeUrl);
    let first = false;
    if (!state) {
      first = true;
      state = this.addTypeState(typeUrl);
      if (state.isWildcardType && (subscribe.length === 0 || subscribe.includes('*'))) state.wildcard = true;
      const initial = req.initial_resource_versions;
      if (isObject(initial)) {
        for (const [name, version] of Object.entries(initial)) {
          if (typeof version === 'string') state.held.set(name, version);
        }
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
    for (const name of unsubscribe) {
      if (name === '*') {
        state.wildcard = false;
      } else {
        state.names.delete(name);
        state.reportedAbsent.delete(name);
      }
    }
    // Whatever the proxy no longer subscribes to, it drops: forget it, so subscribing again resends it.
    if (unsubscribe.length > 0)
      for (const name of state.held.keys()) if (!state.wants(name)) state.held.delete(name);
    for (const name of subscribe) {
      if (name === '*') {
        if (state.isWildcardType && !state.wildcard) {
          state.wildcard = true;
          added = true;
        }
      } else if (!state.names.has(name)) {
        state.names.add(name);
        added = true;
      }
    }
    if (first || added) this.respond(state, null, first);
    this.afterReply();
  }

  protected respond(state: TypeState, trigger: PushTrigger | null, force: boolean): void {
    const current = this.generate(state);
    if (!current) return;
    const changed = [...current.values()].filter((r) => state.held.get(r.name) !== r.version);
    const removed: string[] = [];
    for (const name of state.held.keys()) {
      if (current.has(name)) continue;
      removed.push(name);
      state.held.delete(name);
      if (state.names.has(name)) state.reportedAbsent.add(name);
    }
    for (const name of state.names) {
      if (current.has(name) || state.reportedAbsent.has(name)) continue;
      removed.push(name);
      state.reportedAbsent.add(name);
    }
    if (changed.length === 0 && removed.length === 0 && !force) return;
    for (const r of changed) {
      state.held.set(r.name, r.version);
      state.reportedAbsent.delete(r.name);
    }
    const version = state.held.version;
    const nonce = this.nextNonce();
    const message: DeltaDiscoveryResponseMessage = {
      system_version_info: version,
      resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: state.typeUrl,
      removed_resources: removed,
      nonce,
      control_plane: { identifier: this.ctx.controlPlaneId },
    };
    this.send(state, message, {
      typeUrl: state.typeUrl,
      version,
      nonce,
      resources: changed.length,
      removed: removed.length,
      trigger,
    });
  }
}
