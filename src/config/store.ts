/**
 * ConfigSnapshot: one immutable, versioned view of the valid configuration. The control plane's
 * generators read a snapshot and nothing else; a change produces a new snapshot, never an edit.
 */
import { ISTIO_KINDS } from '../api/istio/resource.ts';
import type { IstioKind, IstioResource, IstioResourceOf } from '../api/istio/resource.ts';
import { resourceKey } from './document.ts';

export class ConfigSnapshot {
  /** Increases by one with every change of content. */
  readonly version: number;
  readonly resources: readonly IstioResource[];
  readonly #byKind: ReadonlyMap<IstioKind, readonly IstioResource[]>;
  readonly #byKey: ReadonlyMap<string, IstioResource>;

  /** `resources` must have unique (kind, namespace, name); they are kept in the order given. */
  constructor(
    resources: readonly IstioResource[],
    version: number,
    indexes?: {
      byKind: ReadonlyMap<IstioKind, readonly IstioResource[]>;
      byKey: ReadonlyMap<string, IstioResource>;
    },
  ) {
    this.version = version;
    this.resources = Object.freeze([...resources]);
    if (indexes) {
      this.#byKind = indexes.byKind;
      this.#byKey = indexes.byKey;
      Object.freeze(this);
      return;
    }
    const byKind = new Map<IstioKind, IstioResource[]>(ISTIO_KINDS.map((k) => [k, []]));
    const byKey = new Map<string, IstioResource>();
    for (const r of this.resources) {
      const key = resourceKey(r.kind, r.metadata.namespace, r.metadata.name);
      if (byKey.has(key)) throw new Error(`ConfigSnapshot: duplicate resource ${key}`);
      byKey.set(key, r);
      byKind.get(r.kind)?.push(r);
    }
    for (const list of byKind.values()) Object.freeze(list);
    this.#byKind = byKind;
    this.#byKey = byKey;
    Object.freeze(this);
  }

  /**
   * The same resources with some replaced by key (kind, namespace and name unchanged), in the same
   * order: an edit of one resource among tens of thousands should not rebuild every index.
   */
  replacing(replacements: ReadonlyMap<string, IstioResource>, version: number): ConfigSnapshot {
    const swapped = new Map<IstioResource, IstioResource>();
    const swap = (r: IstioResource): IstioResource => swapped.get(r) ?? r;
    const kinds = new Set<IstioKind>();
    const byKey = new Map(this.#byKey);
    for (const [key, r] of replacements) {
      const before = byKey.get(key);
      if (!before || before.kind !== r.kind) throw new Error(`ConfigSnapshot: cannot replace ${key}`);
      byKey.set(key, r);
      swapped.set(before, r);
      kinds.add(r.kind);
    }
    const byKind = new Map(this.#byKind);
    for (const kind of kinds) byKind.set(kind, Object.freeze((byKind.get(kind) ?? []).map(swap)));
    return new ConfigSnapshot(this.resources.map(swap), version, { byKind, byKey });
  }

  static readonly empty: ConfigSnapshot = new ConfigSnapshot([], 0);

  /** The resources of one kind, in load order. */
  list<K extends IstioKind>(kind: K): readonly IstioResourceOf<K>[] {
    return (this.#byKind.get(kind) ?? []) as readonly IstioResourceOf<K>[];
  }

  get<K extends IstioKind>(kind: K, namespace: string, name: string): IstioResourceOf<K> | undefined {
    return this.#byKey.get(resourceKey(kind, namespace, name)) as IstioResourceOf<K> | undefined;
  }

  get size(): number {
    return this.resources.length;
  }
}
