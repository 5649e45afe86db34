/**
 * A scripted rate limit service for proxy tests: a real gRPC server on loopback speaking Envoy's RLS API
 * (messages through the proxy's own codec), answering with whatever the test's function returns. The
 * real service (`weft ratelimit`, counting in Redis; its service definition is reused here) has tests of its own; this one lets a test record
 * exactly what a proxy asked and answer slowly or not at all.
 */
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { WireJson } from '../../src/api/envoy/wire.ts';
import { rlsServiceDefinition } from '../../src/ratelimit/rls-definition.ts';
import type { DecodedRateLimitRequest } from '../../src/ratelimit/rls-definition.ts';

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
  const requests: JsonObj[] = [];
  const server = new Server();
  server.addService(rlsServiceDefinition, {
    ShouldRateLimit: (
      call: ServerUnaryCall<DecodedRateLimitRequest, JsonObj>,
      callback: sendUnaryData<JsonObj>,
    ) => {
      const request = call.request.json ?? {};
      requests.push(request);
      const a = answer(request);
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
