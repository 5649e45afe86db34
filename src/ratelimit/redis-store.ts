/**
 * Rate limit counters in Redis, shared by every replica of the service. Each check is one Lua script run
 * with EVALSHA (EVAL when Redis does not have the script cached yet, e.g. after a restart).
 *
 * The store fails fast: the proxies wait only ~100 ms for an answer, so a check while Redis is unreachable
 * must be refused at once (no offline queue), and a check Redis does not answer in time is given up on. The
 * client reconnects in the background, with backoff.
 */
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { createLogger } from '../core/logger.ts';
import type { Logger } from '../core/logger.ts';
import type { WindowAlgorithm } from './limits.ts';
import { FIXED_WINDOW_SCRIPT, SLIDING_WINDOW_SCRIPT } from './window-scripts.ts';

export interface RedisStoreOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Give up on a check Redis has not answered within this (default 500 ms). */
  commandTimeoutMs?: number;
  /** TCP connect timeout (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Prefix of every counter key (default `weft:rl`). */
  keyPrefix?: string;
  logger?: Logger;
}

export interface CheckRequest {
  algorithm: WindowAlgorithm;
  /** Identifies the counter (e.g. domain, policy, client value). */
  counter: readonly string[];
  limit: number;
  windowMs: number;
  hits: number;
}

export interface CheckResult {
  overLimit: boolean;
  remaining: number;
  /** Milliseconds until the current window ends. */
  resetMs: number;
}

/** Redis could not be asked, or did not answer: the caller answers UNAVAILABLE. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

interface Script {
  source: string;
  sha: string;
}

const script = (source: string): Script => ({
  source,
  sha: createHash('sha1').update(source).digest('hex'),
});
const SCRIPTS: Readonly<Record<WindowAlgorithm, Script>> = {
  FixedWindow: script(FIXED_WINDOW_SCRIPT),
  SlidingWindow: script(SLIDING_WINDOW_SCRIPT),
};
const ALGORITHM_TAG: Readonly<Record<WindowAlgorithm, string>> = { FixedWindow: 'fw', SlidingWindow: 'sw' };

/** Reconnect delay: doubling from 50 ms up to 2 s, with jitter so replicas do not reconnect in step. */
export function reconnectDelayMs(retries: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(retries, 6));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function isReplyArray(reply: unknown): reply is [number, number, number] {
  return Array.isArray(reply) && reply.length === 3 && reply.every((v) => typeof v === 'number');
}

function newClient(opts: RedisStoreOptions) {
  return createClient({
    url: opts.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: opts.connectTimeoutMs ?? 1000,
      reconnectStrategy: (retries) => reconnectDelayMs(retries),
    },
  });
}

export class RedisStore {
  readonly #client: ReturnType<typeof newClient>;
  readonly #timeoutMs: number;
  readonly #prefix: string;
  readonly #log: Logger;
  #connecting: Promise<unknown> | undefined;
  #downSince: number | undefined;
  #closed = false;

  constructor(opts: RedisStoreOptions) {
    this.#timeoutMs = opts.commandTimeoutMs ?? 500;
    this.#prefix = opts.keyPrefix ?? 'weft:rl';
    this.#log = opts.logger ?? createLogger('ratelimit.redis');
    this.#client = newClient(opts);
    // Without a listener an 'error' event would crash the process; log each outage once, not every retry.
    this.#client.on('error', (err: Error) => {
      if (this.#downSince !== undefined) return;
      this.#downSince = Date.now();
      this.#log.warn('redis unreachable; checks fail until it is back', { error: err.message });
    });
    this.#client.on('ready', () => {
      if (this.#downSince !== undefined)
        this.#log.info('redis reachable again', { downMs: Date.now() - this.#downSince });
      this.#downSince = undefined;
    });
  }

  get ready(): boolean {
    return this.#client.isReady;
  }

  /**
   * Starts connecting. Resolves once connected, or after `waitMs` if Redis is not reachable yet: the
   * service then starts anyway (checks are refused until Redis is back) rather than not at all.
   */
  async connect(waitMs = 2000): Promise<boolean> {
    this.#connecting ??= this.#client.connect().catch((err: unknown) => {
      if (!this.#closed) this.#log.error('redis connect failed', { error: String(err) });
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#connecting,
      new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]).finally(() => clearTimeout(timer));
    return this.#client.isReady;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // destroy(), not quit(): quit waits for replies that may never come while Redis is down.
    if (this.#client.isOpen) this.#client.destroy();
    await this.#connecting;
  }

  /**
   * The key prefix of a counter's windows (`<prefix>:<window start ms>` is one window's count). The
   * algorithm and window length are part of it, so a policy edit starts fresh counters instead of
   * misreading old ones.
   */
  counterKey(req: Pick<CheckRequest, 'algorithm' | 'counter' | 'windowMs'>): string {
    return [this.#prefix, ALGORITHM_TAG[req.algorithm], String(req.windowMs)]
      .concat(req.counter.map(encodeURIComponent))
      .join(':');
  }

  /** Counts `hits` against the counter and says whether it is over its limit. Rejects with StoreUnavailableError. */
  async check(req: CheckRequest): Promise<CheckResult> {
    const key = this.counterKey(req);
    const args = [String(req.windowMs), String(req.limit), String(req.hits)];
    const reply = await this.#withTimeout(this.#run(SCRIPTS[req.algorithm], key, args));
    if (!isReplyArray(reply))
      throw new StoreUnavailableError(`unexpected reply from redis: ${String(reply)}`);
    const [over, remaining, resetMs] = reply;
    return { overLimit: over === 1, remaining, resetMs };
  }

  async #run(s: Script, key: string, args: string[]): Promise<unknown> {
    const options = { keys: [key], arguments: args };
    try {
      return await this.#client.evalSha(s.sha, options);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      // EVAL runs the script and caches it: the next EVALSHA finds it.
      return await this.#client.eval(s.source, options);
    }
  }

  async #withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailableError(`redis did not answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      return await Promise.race([p, timeout]);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`redis: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      // A reply that arrives after the timeout must not become an unhandled rejection.
      p.catch(() => undefined);
    }
  }
}
