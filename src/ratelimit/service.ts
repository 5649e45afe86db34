/**
 * `weft ratelimit`'s server: Envoy's RLS ShouldRateLimit over gRPC, limits from RateLimitPolicy resources
 * (`spec.global`), counters in Redis shared by every replica of the service.
 *
 * When Redis cannot answer, the call fails with UNAVAILABLE at once: the proxy then applies the policy's
 * failure mode (allow or deny), which is its decision to make, not the service's.
 */
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { IstioResource } from '../api/istio/resource.ts';
import { createLogger } from '../core/logger.ts';
import type { Logger } from '../core/logger.ts';
import { buildLimitTable, resolveLimit, unitMs } from './limits.ts';
import type { LimitTable } from './limits.ts';
import { RedisStore, StoreUnavailableError } from './redis-store.ts';
import { rlsServiceDefinition } from './rls-definition.ts';
import type { DecodedRateLimitRequest, WireObject } from './rls-definition.ts';
import { InvalidRequestError, parseRateLimitRequest, rateLimitResponse } from './rls-messages.ts';
import type { DescriptorVerdict, RateLimitQuery } from './rls-messages.ts';

export interface RateLimitServerOptions {
  /** redis://host:port of the counters' Redis. */
  redisUrl: string;
  /** The configuration's resources; only RateLimitPolicy with `spec.global` matter. */
  resources?: readonly IstioResource[];
  /** Give up on Redis after this (default 500 ms). */
  redisTimeoutMs?: number;
  /** How long start() waits for Redis before serving anyway (default 2000 ms). */
  redisStartupWaitMs?: number;
  logger?: Logger;
}

export interface RateLimitCounters {
  /** ShouldRateLimit calls. */
  requests: number;
  /** Calls answered OVER_LIMIT. */
  overLimit: number;
  /** Calls answered with an error status (Redis unavailable, malformed request). */
  errors: number;
}

/** Redis failures are logged at most this often while an outage lasts, with how many were not logged. */
const ERROR_LOG_INTERVAL_MS = 5000;

export class RateLimitServer {
  readonly counters: RateLimitCounters = { requests: 0, overLimit: 0, errors: 0 };
  readonly #store: RedisStore;
  readonly #log: Logger;
  readonly #startupWaitMs: number;
  #table: LimitTable;
  #server: Server | undefined;
  #lastErrorLog = 0;
  #unloggedErrors = 0;

  constructor(opts: RateLimitServerOptions) {
    this.#log = opts.logger ?? createLogger('ratelimit');
    this.#startupWaitMs = opts.redisStartupWaitMs ?? 2000;
    this.#store = new RedisStore({
      url: opts.redisUrl,
      commandTimeoutMs: opts.redisTimeoutMs,
      logger: this.#log.child('redis'),
    });
    this.#table = buildLimitTable(opts.resources ?? []);
  }

  /** Replaces the limits (a configuration reload); calls in flight finish with the limits they started with. */
  updatePolicies(resources: readonly IstioResource[]): void {
    this.#table = buildLimitTable(resources);
    this.#log.info('rate limit policies loaded', {
      domains: [...this.#table.keys()],
      policies: this.policyCount,
    });
  }

  /** How many policies have global limits. */
  get policyCount(): number {
    let n = 0;
    for (const byPolicy of this.#table.values()) n += byPolicy.size;
    return n;
  }

  /** Connects to Redis (serving anyway if it is not up yet) and serves gRPC; resolves to the bound port. */
  async start(opts: { port: number; address?: string }): Promise<number> {
    if (this.#server) throw new Error('RateLimitServer already started');
    if (!(await this.#store.connect(this.#startupWaitMs)))
      this.#log.warn('redis not reachable yet; answering UNAVAILABLE until it is');
    const server = new Server();
    server.addService(rlsServiceDefinition, {
      ShouldRateLimit: (
        call: ServerUnaryCall<DecodedRateLimitRequest, WireObject>,
        callback: sendUnaryData<WireObject>,
      ) => {
        this.#shouldRateLimit(call.request).then(
          (response) => callback(null, response),
          (err: unknown) => callback(this.#failure(err)),
        );
      },
    });
    const host = opts.address ?? '0.0.0.0';
    const address = host.includes(':') ? `[${host}]:${opts.port}` : `${host}:${opts.port}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
    this.#server = server;
    return port;
  }

  /** Stops serving (calls in flight get up to `graceMs` to finish) and closes the Redis connection. */
  async stop(graceMs = 1000): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.#store.close();
  }

  async #shouldRateLimit(request: DecodedRateLimitRequest): Promise<WireObject> {
    this.counters.requests++;
    if (request.error !== undefined) throw new InvalidRequestError(request.error);
    const query = parseRateLimitRequest(request.json);
    const verdicts = await Promise.all(query.descriptors.map((entries) => this.#check(query, entries)));
    const response = rateLimitResponse(verdicts);
    if (response.overall_code === 'OVER_LIMIT') this.counters.overLimit++;
    return response;
  }

  async #check(
    query: RateLimitQuery,
    entries: RateLimitQuery['descriptors'][number],
  ): Promise<DescriptorVerdict> {
    const resolved = resolveLimit(this.#table, query.domain, entries);
    if (!resolved) return { limited: false };
    const { limit } = resolved;
    const result = await this.#store.check({
      algorithm: resolved.algorithm,
      counter: resolved.counter,
      limit: limit.requestsPerUnit,
      windowMs: unitMs(limit.unit),
      hits: query.hits,
    });
    return { limited: true, limit, ...result };
  }

  #failure(err: unknown): { code: status; details: string } {
    this.counters.errors++;
    if (err instanceof InvalidRequestError) return { code: status.INVALID_ARGUMENT, details: err.message };
    if (!(err instanceof StoreUnavailableError)) {
      const details = `rate limit check failed: ${String(err)}`;
      this.#log.error(details);
      return { code: status.INTERNAL, details };
    }
    const details = `rate limit counters unavailable: ${err.message}`;
    this.#logFailure(details);
    return { code: status.UNAVAILABLE, details };
  }

  #logFailure(details: string): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < ERROR_LOG_INTERVAL_MS) {
      this.#unloggedErrors++;
      return;
    }
    this.#log.error('answering UNAVAILABLE', {
      error: details,
      ...(this.#unloggedErrors > 0 ? { alsoFailedSinceLastLog: this.#unloggedErrors } : {}),
    });
    this.#lastErrorLog = now;
    this.#unloggedErrors = 0;
  }
}
