/** Shared fixtures for the router's tests. */
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteRequest } from './types.ts';

/** A request for matching tests: GET http://example.com/ from 10.0.0.1 unless overridden. */
export function request(
  overrides: Partial<RouteRequest> & { headers?: IncomingHttpHeaders } = {},
): RouteRequest {
  return {
    authority: 'example.com',
    path: '/',
    method: 'GET',
    headers: {},
    scheme: 'http',
    sourceIp: '10.0.0.1',
    ...overrides,
  };
}
