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
import type { ResourceSet } from './types.ts';

export interface EncodedResource {
  readonly name: string;
  /** Content hash (16 hex digits). */
  readonly version: string;
  readonly any: EncodedAny;
  readonly json: JsonObject;
}

/** Past this many entries the content cache starts a new generation early, so memory stays bounded. */
const MAX_CONTENT_ENTRIES = 200_000;

/** The two 32-bit halves of a set version: per-entry hashes summed, so the order of entries does not matter. */
function entrySums(name: string, version: string): [number, number] {
  const entry = `${name}\u0000${version}`;
  return [hashString(entry, 1), hashString(entry, 2)];
}

function setVersion(size: number, low: number, high: number): string {
  if (size === 0) return 'empty';
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return hex(low) + hex(high);
}

/**
 * An immutable set of encoded resources (one type, name → resource), shared by every proxy whose generator
 * output and subscription are the same objects. Its version and, for responses that carry all of it, its
 * encoded resource list are computed once.
 */
export class EncodedSet {
  readonly resources: ReadonlyMap<string, EncodedResource>;
  /** The names the set was restricted to when it was encoded (null: all of the generator's output). */
  readonly filter: ReadonlySet<string> | null;
  #low = 0;
  #high = 0;
  #summed = false;
  /** Opaque per-set data the response codec keeps: the encoded resource list, state-of-the-world and delta. */
  wire: Uint8Array | null = null;
  deltaWire: Uint8Array | null = null;

  constructor(resources: ReadonlyMap<string, EncodedResource>, filter: ReadonlySet<string> | null = null) {
    this.resources = resources;
    this.filter = filter;
  }

  get size(): number {
    return this.resources.size;
  }

  /** Sums of per-entry hashes (see HeldResources.version). */
  sums(): [number, number] {
    if (!this.#summed) {
      let low = 0;
      let high = 0;
      for (const [name, r] of this.resources) {
        const [l, h] = entrySums(name, r.version);
        low = (low + l) >>> 0;
        high = (high + h) >>> 0;
      }
      this.#low = low;
      this.#high = high;
      this.#summed = true;
    }
    return [this.#low, this.#high];
  }

  get version(): string {
    const [low, high] = this.sums();
    return setVersion(this.size, low, high);
  }
}

const NO_FILTER = {};

export class ResourceEncoder {
  // Generators return immutable JSON; an object seen before needs neither stringify nor hash.
  #byIdentity = new WeakMap<JsonObject, EncodedResource>();
  // Two generations by content: what this round used and what the previous one did. Content unused for a
  // whole round is dropped; content that stays (most of it, round after round) is never encoded again.
  #current = new Map<string, EncodedResource>();
  #previous = new Map<string, EncodedResource>();
  // Generator output (a ResourceSet the generator shares between proxies) → subscription filter → encoded set.
  #sets = new WeakMap<ResourceSet, WeakMap<object, EncodedSet>>();
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

  /**
   * The resources of `set` that `names` admits (all when null), encoded. `set` and `names` must not change
   * afterwards: the result is remembered per (set, names) pair, so proxies that share both share the result.
   */
  encodeSet(set: ResourceSet, names: ReadonlySet<string> | null): EncodedSet {
    let byFilter = this.#sets.get(set);
    const filter = names ?? NO_FILTER;
    const known = byFilter?.get(filter);
    if (known) return known;
    const out = new Map<string, EncodedResource>();
    for (const [name, json] of set) if (!names || names.has(name)) out.set(name, this.encode(name, json));
    const encoded = new EncodedSet(out, names);
    if (!byFilter) {
      byFilter = new WeakMap();
      this.#sets.set(set, byFilter);
    }
    byFilter.set(filter, encoded);
    return encoded;
  }
}

/** The version of a set of resources (what a proxy holds of one type): a hash of its names and versions. */
export function versionOfSet(versions: ReadonlyMap<string, string>): string {
  if (versions.size === 0) return 'empty';
  const entries: string[] = [];
  for (const [name, version] of versions) entries.push(`${name}\u0000${version}`);
  return createHash('sha256').update(entries.sort().join('\n')).digest('hex').slice(0, 16);
}

/** Past this many overrides (and an eighth of the base), a held set is flattened into a new base of its own. */
const MAX_OVERRIDES = 256;

type Versioned = { readonly version: string };

/** A change of what a proxy holds, and what goes out to make it: the resources whose version changed. */
export interface HeldTransition {
  readonly next: HeldSet;
  /** The resources to send (in the order of the set they come from); an EncodedSet, so its encoding is shared. */
  readonly changed: EncodedSet;
  /** Names held before and not after (delta sends them as removed_resources). */
  readonly removed: readonly string[];
}

/**
 * An immutable state of what a proxy holds of one type: a base map plus overrides. Proxies that were sent the
 * same responses hold the same HeldSet object, and a transition (a push, a regenerated set) is computed once
 * for all of them and remembered: a thousand proxies receiving the same endpoint push cost one diff, one
 * version and one encoding. Versions are order-independent sums of per-entry hashes (see setVersion), so a
 * change of one entry among thousands costs one hash.
 */
export class HeldSet {
  readonly base: ReadonlyMap<string, Versioned>;
  /** Overrides of the base: a version, or null for an entry of the base that is no longer held. */
  readonly own: ReadonlyMap<string, string | null>;
  readonly size: number;
  readonly #low: number;
  readonly #high: number;
  readonly #toSet = new WeakMap<EncodedSet, HeldTransition>();
  readonly #updates = new WeakMap<EncodedSet, HeldTransition>();
  readonly #rebased = new WeakMap<EncodedSet, HeldSet | null>();

  private constructor(
    base: ReadonlyMap<string, Versioned>,
    own: ReadonlyMap<string, string | null>,
    size: number,
    low: number,
    high: number,
  ) {
    this.base = base;
    this.own = own;
    this.size = size;
    this.#low = low;
    this.#high = high;
  }

  static readonly EMPTY = new HeldSet(new Map(), new Map(), 0, 0, 0);
  static readonly #ofSet = new WeakMap<EncodedSet, HeldSet>();

  /** Holding exactly `set` (one HeldSet per EncodedSet). */
  static of(set: EncodedSet): HeldSet {
    let held = HeldSet.#ofSet.get(set);
    if (!held) {
      const [low, high] = set.sums();
      held = new HeldSet(set.resources, new Map(), set.size, low, high);
      HeldSet.#ofSet.set(set, held);
    }
    return held;
  }

  get(name: string): string | undefined {
    const own = this.own.get(name);
    if (own !== undefined) return own ?? undefined;
    return this.base.get(name)?.version;
  }

  keys(): string[] {
    const out: string[] = [];
    for (const name of this.base.keys()) if (!this.own.has(name)) out.push(name);
    for (const [name, version] of this.own) if (version !== null) out.push(name);
    return out;
  }

  get version(): string {
    return setVersion(this.size, this.#low, this.#high);
  }

  /** Whether this holds exactly `set`. */
  equals(set: EncodedSet): boolean {
    if (HeldSet.#ofSet.get(set) === this) return true;
    if (this.size !== set.size) return false;
    for (const [name, r] of set.resources) if (this.get(name) !== r.version) return false;
    return true;
  }

  /** This with some entries set (a version) or removed (null). */
  with(changes: Iterable<readonly [string, string | null]>): HeldSet {
    const own = new Map(this.own);
    let { size } = this;
    let low = this.#low;
    let high = this.#high;
    for (const [name, version] of changes) {
      const old = this.#getIn(own, name);
      if (old === (version ?? undefined)) continue;
      if (old !== undefined) {
        const [l, h] = entrySums(name, old);
        low = (low - l) >>> 0;
        high = (high - h) >>> 0;
        size--;
      }
      if (version !== null) {
        const [l, h] = entrySums(name, version);
        low = (low + l) >>> 0;
        high = (high + h) >>> 0;
        size++;
        own.set(name, version);
      } else if (this.base.has(name)) own.set(name, null);
      else own.delete(name);
    }
    if (own.size > Math.max(MAX_OVERRIDES, this.base.size / 8)) {
      // Flatten: a map of its own, so lookups and later changes stay cheap.
      const flat = new Map<string, Versioned>();
      for (const [name, r] of this.base) if (!own.has(name)) flat.set(name, r);
      for (const [name, version] of own) if (version !== null) flat.set(name, { version });
      return new HeldSet(flat, new Map(), size, low, high);
    }
    return new HeldSet(this.base, own, size, low, high);
  }

  /**
   * The proxy is to hold `current` (a whole regenerated set): what differs from this. Remembered per
   * `current`, so every proxy in this state shares the result.
   */
  toSet(current: EncodedSet): HeldTransition {
    let t = this.#toSet.get(current);
    if (!t) {
      const changed = new Map<string, EncodedResource>();
      const removed: string[] = [];
      if (!this.equals(current)) {
        for (const [name, r] of current.resources) if (this.get(name) !== r.version) changed.set(name, r);
        for (const name of this.keys()) if (!current.resources.has(name)) removed.push(name);
      }
      t = { next: HeldSet.of(current), changed: new EncodedSet(changed), removed };
      this.#toSet.set(current, t);
    }
    return t;
  }

  /**
   * Only the names of `update` (its filter) were regenerated: those present take their new version, those
   * absent are no longer held. Remembered per `update`.
   */
  withUpdate(update: EncodedSet, names: ReadonlySet<string>): HeldTransition {
    let t = this.#updates.get(update);
    if (!t) {
      const changed = new Map<string, EncodedResource>();
      const changes: [string, string | null][] = [];
      const removed: string[] = [];
      for (const name of names) {
        const r = update.resources.get(name);
        if (!r) {
          if (this.get(name) !== undefined) {
            changes.push([name, null]);
            removed.push(name);
          }
        } else if (this.get(name) !== r.version) {
          changed.set(name, r);
          changes.push([name, r.version]);
        }
      }
      t = { next: changes.length > 0 ? this.with(changes) : this, changed: new EncodedSet(changed), removed };
      this.#updates.set(update, t);
    }
    return t;
  }

  /**
   * The same content, as overrides of `current`'s entries: the shared HeldSet of `current` itself when they are
   * equal; null when they differ in more than `limit` entries (no gain). Remembered per `current`.
   */
  rebase(current: EncodedSet, limit: number): HeldSet | null {
    if (this.base === current.resources) return this;
    let known = this.#rebased.get(current);
    if (known !== undefined) return known;
    // (Inline, not a #private method: with one, tsc's output initialises the static EMPTY through an alias
    // that is not yet assigned.)
    known = null;
    const own = new Map<string, string | null>();
    let heldInCurrent = 0;
    for (const [name, r] of current.resources) {
      const version = this.get(name);
      if (version !== undefined) heldInCurrent++;
      if (version === r.version) continue;
      own.set(name, version ?? null);
      if (own.size > limit) break;
    }
    if (own.size <= limit && heldInCurrent < this.size) {
      // Held names `current` does not have: overrides too.
      for (const name of this.keys()) {
        if (current.resources.has(name)) continue;
        if (own.size > limit) break;
        own.set(name, this.get(name)!);
      }
    }
    if (own.size === 0) known = HeldSet.of(current);
    else if (own.size <= limit) known = new HeldSet(current.resources, own, this.size, this.#low, this.#high);
    this.#rebased.set(current, known);
    return known;
  }

  #getIn(own: ReadonlyMap<string, string | null>, name: string): string | undefined {
    const o = own.get(name);
    if (o !== undefined) return o ?? undefined;
    return this.base.get(name)?.version;
  }
}

/**
 * What a proxy holds of one type (resource name → version), as far as the server knows: a reference to a
 * shared, immutable HeldSet. The mutable operations (delta's bookkeeping, a subscription that shrinks) derive
 * a HeldSet of this proxy's own.
 */
export class HeldResources {
  #state: HeldSet = HeldSet.EMPTY;

  get state(): HeldSet {
    return this.#state;
  }

  get size(): number {
    return this.#state.size;
  }

  get(name: string): string | undefined {
    return this.#state.get(name);
  }

  has(name: string): boolean {
    return this.#state.get(name) !== undefined;
  }

  /** The names held (a copy: entries may be deleted while the caller walks it). */
  keys(): string[] {
    return this.#state.keys();
  }

  set(name: string, version: string): void {
    if (this.#state.get(name) !== version) this.#state = this.#state.with([[name, version]]);
  }

  delete(name: string): void {
    if (this.#state.get(name) !== undefined) this.#state = this.#state.with([[name, null]]);
  }

  /** Several changes at once (a version, or null to remove): one new state, not one per entry. */
  apply(changes: readonly (readonly [string, string | null])[]): void {
    if (changes.length > 0) this.#state = this.#state.with(changes);
  }

  /** Removes every name `keep` rejects. */
  retain(keep: (name: string) => boolean): void {
    this.apply(
      this.keys()
        .filter((name) => !keep(name))
        .map((name) => [name, null] as const),
    );
  }

  /** The proxy now holds exactly `set`. */
  adopt(set: EncodedSet): void {
    this.#state = HeldSet.of(set);
  }

  /** Moves to a transition's result (see HeldSet.toSet / withUpdate). */
  move(t: HeldTransition): void {
    this.#state = t.next;
  }

  /**
   * Re-expresses what the proxy holds over `set` (what is current): its shared HeldSet when they are equal, else
   * that set's entries plus the few that differ — unless more than `limit` differ. Endpoint pushes move proxies
   * through HeldSets of overrides, and proxies that skip different rounds stop sharing them: left alone, each
   * would end up flattening a map of its own (thousands of entries, per proxy).
   */
  rejoin(set: EncodedSet, limit: number): void {
    const next = this.#state.rebase(set, limit);
    if (next) this.#state = next;
  }

  holdsExactly(set: EncodedSet): boolean {
    return this.#state.equals(set);
  }

  /** 16 hex digits; the same set has the same version on every proxy. */
  get version(): string {
    return this.#state.version;
  }
}
