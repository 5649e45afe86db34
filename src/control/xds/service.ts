/**
 * The ADS gRPC service, defined by hand: two bidirectional streams whose messages the wire codec
 * (src/api/envoy/wire.ts) turns into canonical JSON; responses are written by response-codec.ts. No proto-loader
 * at run time.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from '../../api/envoy/wire.ts';
import type { EncodedAny, WireJson } from '../../api/envoy/wire.ts';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from './response-codec.ts';

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
export type DecodedRequest = { json: { [key: string]: WireJson }; error?: undefined } | { error: string };

export interface DiscoveryResponseMessage {
  version_info: string;
  resources: EncodedAny[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier: string };
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
}

function decoder(typeName: string): (bytes: Buffer) => DecodedRequest {
  return (bytes) => {
    try {
      // A NACK's status may carry details of types we do not know; they must not end the stream.
      return { json: decodeMessage(typeName, bytes, { unknownAny: 'keep' }) };
    } catch (err) {
      return { error: `malformed ${typeName}: ${(err as Error).message}` };
    }
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
    requestDeserialize: decoder(DISCOVERY_REQUEST),
    responseSerialize: (m: DiscoveryResponseMessage) => toBuffer(encodeDiscoveryResponse(m)),
    responseDeserialize: (bytes: Buffer) => decodeMessage(DISCOVERY_RESPONSE, bytes),
  },
  DeltaAggregatedResources: {
    path: DELTA_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder(DELTA_DISCOVERY_REQUEST),
    requestDeserialize: decoder(DELTA_DISCOVERY_REQUEST),
    responseSerialize: (m: DeltaDiscoveryResponseMessage) => toBuffer(encodeDeltaDiscoveryResponse(m)),
    responseDeserialize: (bytes: Buffer) => decodeMessage(DELTA_DISCOVERY_RESPONSE, bytes),
  },
};
