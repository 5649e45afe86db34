/** What the server knows about one resource type on one stream: subscription, what the proxy holds, ACK state. */
import { HeldResources } from './resources.ts';
import type { EncodedSet } from './resources.ts';
import type { Subscription } from './subscriptions.ts';
import { TYPE_URL } from './types.ts';

export type SyncState = 'SYNCED' | 'STALE' | 'NACK';

/** Listener and Cluster: a subscription may be wildcard, and the generator is asked for the whole set. */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URL.listener, TYPE_URL.cluster]);

export const KNOWN_TYPES: ReadonlySet<string> = new Set(Object.values(TYPE_URL));

/** The short names Envoy and Istio print (CDS, LDS, ...), used as metric labels and table headers. */
export const SHORT_TYPE_NAME: Readonly<Record<string, string>> = {
  [TYPE_URL.listener]: 'lds',
  [TYPE_URL.route]: 'rds',
  [TYPE_URL.cluster]: 'cds',
  [TYPE_URL.endpoint]: 'eds',
  [TYPE_URL.secret]: 'sds',
};

export interface TypeStatus {
  typeUrl: string;
  /** Subscribed names; `*` first for a wildcard subscription. */
  subscribed: string[];
  /** How many resources of this type the proxy holds, as far as the server knows. */
  resources: number;
  lastSentVersion: string;
  lastSentNonce: string;
  lastSentAt: string | null;
  lastAckedVersion: string;
  lastAckedAt: string | null;
  state: SyncState;
  /** The proxy's error_detail message from its last NACK, while the latest response stands NACKed. */
  error?: string;
  /** When a push (not a reply to a request) last sent this type. */
  lastPushAt: string | null;
}

function iso(ms: number): string | null {
  return ms === 0 ? null : new Date(ms).toISOString();
}

const NO_NAMES: ReadonlySet<string> = new Set();

export class TypeState {
  readonly typeUrl: string;
  wildcard = false;
  /**
   * Subscribed names. Never changed in place: a new subscription is a new set, so the generator and the encoder
   * can remember results per set, and proxies that subscribe to the same names share one (see Subscriptions).
   */
  names: ReadonlySet<string> = NO_NAMES;
  /**
   * The names as the proxy last sent them, shared between proxies: state of the world, its subscription;
   * delta, its last resource_names_subscribe list.
   */
  subscription: Subscription | null = null;
  /** What the proxy holds, as far as the server knows: resource name → version (content hash). */
  readonly held = new HeldResources();
  /** The rejoin base this proxy's held state was last re-expressed over (tried once per base). */
  rejoinedOnto: EncodedSet | null = null;
  /** Delta: subscribed names already reported as absent (so "does not exist" is said once). */
  readonly reportedAbsent = new Set<string>();
  lastSentVersion = '';
  lastSentNonce = '';
  lastSentAt = 0;
  lastAckedVersion = '';
  lastAckedAt = 0;
  lastPushAt = 0;
  /** The nonce of a response not yet ACKed or NACKed; null when the proxy has answered the latest one. */
  awaitingNonce: string | null = null;
  /** Set by a NACK of the latest response, cleared by the next response or ACK. */
  nackMessage: string | null = null;

  constructor(typeUrl: string) {
    this.typeUrl = typeUrl;
  }

  get isWildcardType(): boolean {
    return WILDCARD_TYPES.has(this.typeUrl);
  }

  /** Whether a generated resource belongs to this subscription. */
  wants(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** Delta: a subscription change (a new set, shared by every proxy with the same names; see `names`). */
  changeNames(
    add: Iterable<string>,
    remove: Iterable<string>,
    intern: (names: ReadonlySet<string>) => ReadonlySet<string>,
  ): void {
    const next = new Set(this.names);
    for (const n of remove) next.delete(n);
    for (const n of add) next.add(n);
    this.names = intern(next);
  }

  recordSent(version: string, nonce: string, now: number, byPush: boolean): void {
    this.lastSentVersion = version;
    this.lastSentNonce = nonce;
    this.lastSentAt = now;
    if (byPush) this.lastPushAt = now;
    this.awaitingNonce = nonce;
    this.nackMessage = null;
  }

  recordAck(version: string, now: number): void {
    this.lastAckedVersion = version;
    this.lastAckedAt = now;
    this.awaitingNonce = null;
    this.nackMessage = null;
  }

  recordNack(message: string): void {
    this.awaitingNonce = null;
    this.nackMessage = message || '(no message)';
  }

  get state(): SyncState {
    if (this.awaitingNonce !== null) return 'STALE';
    return this.nackMessage !== null ? 'NACK' : 'SYNCED';
  }

  status(): TypeStatus {
    const status: TypeStatus = {
      typeUrl: this.typeUrl,
      subscribed: [...(this.wildcard ? ['*'] : []), ...[...this.names].sort()],
      resources: this.held.size,
      lastSentVersion: this.lastSentVersion,
      lastSentNonce: this.lastSentNonce,
      lastSentAt: iso(this.lastSentAt),
      lastAckedVersion: this.lastAckedVersion,
      lastAckedAt: iso(this.lastAckedAt),
      state: this.state,
      lastPushAt: iso(this.lastPushAt),
    };
    if (this.nackMessage !== null) status.error = this.nackMessage;
    return status;
  }
}
