/**
 * Encoding resources once. Many proxies get the same clusters and endpoints; each distinct resource is
 * hashed and encoded as an Any once, and the bytes are reused in every response that carries it.
 * A resource's version is its content hash, so the same content has the same version on every proxy
 * (proxy-status can compare them) and "did this change for this proxy?" is a string comparison.
 */
import { createHash } from 'node:crypto';
import { encodeAny } from '../../api/envoy/wire.ts';
import type { EncodedAny } from '../../api/envoy/wire.ts';
import { hashString } from '../../core/hash.ts';
import type { JsonObject } from '../../core/json.ts';

export interface EncodedResource {
  readonly name: string;
  /** Content hash (16 hex digits). */
  readonly version: string;
  readonly any: EncodedAny;
  readonly json: JsonObject;
}

/** Past this many entries the content cache starts a new generation early, so memory stays bounded. */
const MAX_CONTENT_ENTRIES = 200_000;

export class ResourceEncoder {
  // Generators return immutable JSON; an object seen before needs neither stringify nor hash.
  #byIdentity = new WeakMap<JsonObject, EncodedResource>();
  // Two generations by content: what this round used and what the previous one did. Content unused for a
  // whole round is dropped; content that stays (most of it, round after round) is never encoded again.
  #current = new Map<string, EncodedResource>();
  #previous = new Map<string, EncodedResource>();
  encodedCount = 0;

  /** Marks the start of a push round: content not used since the previous round start may be forgotten. */
  startRound(): void {
    this.#previous = this.#current;
    this.#current = new Map();
  }

  encode(name: string, json: JsonObject): EncodedResource {
    const known = this.#byIdentity.get(json);
    if (known && known.name === name) return known;
    const text = JSON.stringify(json);
    const key = `${name}\u0000${text}`;
    let entry = this.#current.get(key) ?? this.#previous.get(key);
    if (!entry) {
      entry = {
        name,
        version: createHash('sha256').update(text).digest('hex').slice(0, 16),
        any: encodeAny(json),
        json,
      };
      this.encodedCount++;
    }
    if (this.#current.size >= MAX_CONTENT_ENTRIES) this.startRound();
    this.#current.set(key, entry);
    this.#byIdentity.set(json, entry);
    return entry;
  }
}

/** The version of a set of resources (what a proxy holds of one type): a hash of its names and versions. */
export function versionOfSet(versions: ReadonlyMap<string, string>): string {
  if (versions.size === 0) return 'empty';
  const entries: string[] = [];
  for (const [name, version] of versions) entries.push(`${name}\u0000${version}`);
  return createHash('sha256').update(entries.sort().join('\n')).digest('hex').slice(0, 16);
}

/**
 * What a proxy holds of one type (resource name → version), with the version of the whole set kept up to
 * date as entries change: an order-independent sum of per-entry hashes, so a response that changes one
 * endpoint among thousands costs one hash, not a sort and hash of the whole set.
 */
export class HeldResources {
  readonly #versions = new Map<string, string>();
  #low = 0;
  #high = 0;

  get size(): number {
    return this.#versions.size;
  }

  get(name: string): string | undefined {
    return this.#versions.get(name);
  }

  has(name: string): boolean {
    return this.#versions.has(name);
  }

  keys(): MapIterator<string> {
    return this.#versions.keys();
  }

  set(name: string, version: string): void {
    const old = this.#versions.get(name);
    if (old === version) return;
    if (old !== undefined) this.#mix(name, old, -1);
    this.#versions.set(name, version);
    this.#mix(name, version, 1);
  }

  delete(name: string): void {
    const old = this.#versions.get(name);
    if (old === undefined) return;
    this.#versions.delete(name);
    this.#mix(name, old, -1);
  }

  /** 16 hex digits; the same set has the same version on every proxy. */
  get version(): string {
    if (this.#versions.size === 0) return 'empty';
    const hex = (n: number): string => n.toString(16).padStart(8, '0');
    return hex(this.#low) + hex(this.#high);
  }

  #mix(name: string, version: string, sign: 1 | -1): void {
    const entry = `${name}\u0000${version}`;
    this.#low = (this.#low + sign * hashString(entry, 1)) >>> 0;
    this.#high = (this.#high + sign * hashString(entry, 2)) >>> 0;
  }
}
