/**
 * The network filter `istio.metadata_exchange` (Envoy's TCP metadata exchange, written by Istio as an
 * xds.type.v3.TypedStruct of envoy.tcp.metadataexchange.config.MetadataExchange):
 *
 *   protocol: "istio-peer-exchange"   the ALPN that turns the exchange on for a connection
 *
 * Nothing else is implemented; any other field is refused.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { onlyFields, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';

export const TCP_METADATA_EXCHANGE_TYPE_URL =
  'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange';
export const TCP_METADATA_EXCHANGE_FILTER_NAME = 'istio.metadata_exchange';

export interface PeerExchangeConfig {
  /** The negotiated ALPN protocol for which a connection carries the exchange (Istio: istio-peer-exchange). */
  readonly protocol: string;
}

export function compilePeerExchange(value: JsonObject, path: string): PeerExchangeConfig {
  onlyFields(value, path, ['protocol']);
  const protocol = optString(value, 'protocol', path) ?? '';
  if (protocol === '')
    throw new ConfigError(fieldPath(path, 'protocol'), 'required (the ALPN of exchanging connections)');
  if (Buffer.byteLength(protocol) > 255)
    throw new ConfigError(fieldPath(path, 'protocol'), 'an ALPN protocol is at most 255 bytes long');
  return { protocol };
}
