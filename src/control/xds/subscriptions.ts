/**
 * Subscriptions, shared. Sidecars with the same clusters subscribe to the same EDS names:
 * one Set per distinct list (not one per proxy, which at a thousand proxies and thousands of clusters would be
 * millions of entries), and the same Set object for all of them, so the generator and the encoder remember
 * their per-subscription results once. Entries go when no stream holds them any more.
 */
import { createHash } from 'node:crypto';
import { hashString } from '../../core/hash.ts';
import type { ResourceNames } from './request-codec.ts';

export interface Subscription {
  /** The names as encoded in the request (a private copy). */
  readonly bytes: Uint8Array;
  /** The names, without `*`. */
  readonly names: ReadonlySet<string>;
  /** Whether the list held `*` (a wildcard subscription of Listener or Cluster). */
  readonly star: boolean;
}

export class Subscriptions {
  readonly #byDigest = new Map<string, WeakRef<Subscription>>();
  readonly #cleanup = new FinalizationRegistry<string>((digest) => {
    if (this.#byDigest.get(digest)?.deref() === undefined) this.#byDigest.delete(digest);
  });

  readonly #sets = new Map<string, WeakRef<ReadonlySet<string>>[]>();
  /** Sets already returned by internSet (each is its own canonical set). */
  readonly #interned = new WeakSet<ReadonlySet<string>>();
  readonly #setCleanup = new FinalizationRegistry<string>((key) => {
    const live = (this.#sets.get(key) ?? []).filter((ref) => ref.deref() !== undefined);
    if (live.length > 0) this.#sets.set(key, live);
    else this.#sets.delete(key);
  });

  get size(): number {
    return this.#byDigest.size;
  }

  /**
   * The shared set with these names (delta subscriptions change by increments; proxies that end up with the same
   * names get the same set). `names` must not be changed afterwards.
   */
  internSet(names: ReadonlySet<string>): ReadonlySet<string> {
    if (this.#interned.has(names)) return names;
    let sum = 0;
    for (const n of names) sum = (sum + hashString(n, 3)) >>> 0;
    const key = `${names.size}:${sum}`;
    const refs = this.#sets.get(key) ?? [];
    for (const ref of refs) {
      const known = ref.deref();
      if (known && [...names].every((n) => known.has(n))) return known;
    }
    refs.push(new WeakRef(names));
    this.#interned.add(names);
    this.#sets.set(key, refs);
    this.#setCleanup.register(names, key);
    return names;
  }

  /** The shared subscription for these names (same bytes, same object). */
  intern(names: ResourceNames): Subscription {
    const digest = names.empty ? '' : createHash('sha1').update(names.bytes).digest('base64');
    const known = this.#byDigest.get(digest)?.deref();
    if (known && Buffer.compare(known.bytes, names.bytes) === 0) return known;
    const list = names.list();
    const subscription: Subscription = {
      bytes: Buffer.from(names.bytes),
      names: new Set(list.filter((n) => n !== '*')),
      star: list.includes('*'),
    };
    this.#byDigest.set(digest, new WeakRef(subscription));
    this.#cleanup.register(subscription, digest);
    return subscription;
  }
}
