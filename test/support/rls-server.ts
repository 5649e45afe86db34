/**
 * A scripted rate limit service for proxy tests: a real gRPC server on loopback speaking Envoy's RLS API
 * (messages through the proxy's own codec), answering with whatever the test's function returns. The
 * real service (`weft ratelimit`, counting in Redis) has tests of its own; this one lets a test record
 * exactly what a proxy asked and answer slowly or not at all.
 */
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData, ServiceDefinition } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from '../../src/api/envoy/wire.ts';
import type { WireJson } from '../../src/api/envoy/wire.ts';

export type JsonObj = { [key: string]: WireJson };

export interface ScriptedRls {
  readonly port: number;
  /** Every request received, decoded. */
  readonly requests: JsonObj[];
  close(): Promise<void>;
}

/** `answer` returns the response JSON, 'hang' to never answer, or an Error for UNAVAILABLE. */
export async function startScriptedRls(
  answer: (request: JsonObj) => JsonObj | 'hang' | Error,
): Promise<ScriptedRls> {
  const definition: ServiceDefinition = {
    ShouldRateLimit: {
      path: '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: JsonObj) =>
        Buffer.from(encodeMessage('envoy.service.ratelimit.v3.RateLimitRequest', v)),
      requestDeserialize: (b: Buffer) => decodeMessage('envoy.service.ratelimit.v3.RateLimitRequest', b),
      responseSerialize: (v: JsonObj) =>
        Buffer.from(encodeMessage('envoy.service.ratelimit.v3.RateLimitResponse', v)),
      responseDeserialize: (b: Buffer) => decodeMessage('envoy.service.ratelimit.v3.RateLimitResponse', b),
    },
  };
  const requests: JsonObj[] = [];
  const server = new Server();
  server.addService(definition, {
    ShouldRateLimit: (call: ServerUnaryCall<JsonObj, JsonObj>, callback: sendUnaryData<JsonObj>) => {
      requests.push(call.request);
      const a = answer(call.request);
      if (a === 'hang') return;
      if (a instanceof Error) callback({ code: status.UNAVAILABLE, details: a.message });
      else callback(null, a);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}
