/**
 * The ADS gRPC service, defined by hand: two bidirectional streams whose messages the wire codec
 * (src/api/envoy/wire.ts) turns into canonical JSON; responses are written by response-codec.ts. No proto-loader
 * at run time.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from '../../api/envoy/wire.ts';
import type { EncodedAny, WireJson } from '../../api/envoy/wire.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './request-codec.ts';
import type { ResourceNames } from './request-codec.ts';
import type { EncodedSet } from './resources.ts';
import type { Subscription } from './subscriptions.ts';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse, ResponseBytes } from './response-codec.ts';

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const SOTW_PATH = `/${ADS_SERVICE_NAME}/StreamAggregatedResources`;
export const DELTA_PATH = `/${ADS_SERVICE_NAME}/DeltaAggregatedResources`;

export const DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
export const DISCOVERY_RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';
export const DELTA_DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
export const DELTA_DISCOVERY_RESPONSE = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

/**
 * A request as the handler sees it. Decoding never throws inside grpc-js (which would end the stream
 * with INTERNAL and a generic message); a bad frame arrives as `error` and the handler ends the stream
 * with INVALID_ARGUMENT and this message.
 */
export type DecodedRequest =
  | {
      json: { [key: string]: WireJson };
      /**
       * resource_names (state of the world) or resource_names_subscribe (delta), kept encoded: json has
       * neither then.
       */
      names?: ResourceNames;
      /** The names as a shared subscription (set by the stream when it decodes). */
      subscription?: Subscription;
      error?: undefined;
      raw?: undefined;
    }
  /** Not decoded yet: the stream decodes it (state of the world: knowing what its proxy sent before). */
  | { raw: Uint8Array; error?: undefined; json?: undefined }
  | { error: string; raw?: undefined; json?: undefined };

export interface DiscoveryResponseMessage {
  version_info: string;
  resources: EncodedAny[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier: string };
  /** Set when `resources` is all of this set, in its order: the encoder may reuse the set's encoded list. */
  encodedSet?: EncodedSet;
}

export interface DeltaResourceMessage {
  name: string;
  version: string;
  resource: EncodedAny;
}

export interface DeltaDiscoveryResponseMessage {
  system_version_info: string;
  resources: DeltaResourceMessage[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane?: { identifier: string };
  /** Set when `resources` is all of this set, in its order: the encoder may reuse the set's encoded list. */
  encodedSet?: EncodedSet;
}

/** Decodes a state-of-the-world request (see request-codec.ts); `known`: name lists the stream sent before. */
export function decodeSotwRequest(bytes: Uint8Array, known: readonly Uint8Array[]): DecodedRequest {
  try {
    return decodeDiscoveryRequest(bytes, known);
  } catch (err) {
    return { error: `malformed ${DISCOVERY_REQUEST}: ${(err as Error).message}` };
  }
}

/** Decodes a delta request (see request-codec.ts): resource_names_subscribe stays encoded, as `names`. */
export function decodeDeltaRequest(bytes: Uint8Array): DecodedRequest {
  try {
    const { json, subscribe } = decodeDeltaDiscoveryRequest(bytes);
    return { json, names: subscribe };
  } catch (err) {
    return { error: `malformed ${DELTA_DISCOVERY_REQUEST}: ${(err as Error).message}` };
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A response serializer: what the connections already encoded goes through as it is. grpc-js reads only
 * `byteLength` and `copy` of what a serializer returns (it copies it into the frame it writes), so ResponseBytes'
 * blocks go in without being joined first; a test over a real grpc-js stream checks the bytes that arrive.
 */
function responseSerializer<M extends object>(
  encode: (m: M) => Uint8Array,
): (m: M | ResponseBytes | Uint8Array) => Buffer {
  return (m) => {
    if (m instanceof ResponseBytes) return m as unknown as Buffer;
    return toBuffer(m instanceof Uint8Array ? m : encode(m));
  };
}

/** Requests are encoded only by clients (tests, tools); the server's responses take the fast path in response-codec.ts. */
function encoder(typeName: string): (message: object) => Buffer {
  return (message) => toBuffer(encodeMessage(typeName, message));
}

export const adsServiceDefinition: ServiceDefinition = {
  StreamAggregatedResources: {
    path: SOTW_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder(DISCOVERY_REQUEST),
    requestDeserialize: (bytes: Buffer): DecodedRequest => ({ raw: bytes }),
    responseSerialize: responseSerializer<DiscoveryResponseMessage>(encodeDiscoveryResponse),
    responseDeserialize: (bytes: Buffer) => decodeMessage(DISCOVERY_RESPONSE, bytes),
  },
  DeltaAggregatedResources: {
    path: DELTA_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder(DELTA_DISCOVERY_REQUEST),
    requestDeserialize: (bytes: Buffer): DecodedRequest => ({ raw: bytes }),
    responseSerialize: responseSerializer<DeltaDiscoveryResponseMessage>(encodeDeltaDiscoveryResponse),
    responseDeserialize: (bytes: Buffer) => decodeMessage(DELTA_DISCOVERY_RESPONSE, bytes),
  },
};
