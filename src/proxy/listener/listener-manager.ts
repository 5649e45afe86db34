/**
 * Binds each listener, selects a filter chain per accepted connection and hands the socket to the chain's
 * terminal network filter (HTTP connection manager or TCP proxy). Runtime objects are built once per config.
 *
 * Updates follow Envoy's listener manager: a listener updated at the same address keeps its socket; filter
 * chains whose configuration did not change keep their runtime (and connections), new connections take the
 * new chains, and connections on changed or removed chains drain (GOAWAY, `connection: close`) and are
 * closed when the drain period ends. A removed listener stops accepting and drains the same way.
 */
import net from 'node:net';
import type { Server, Socket } from 'node:net';
import type { StatsStore, Counter, Gauge } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { HcmRuntime } from '../http/connection-manager.ts';
import { TcpProxy } from '../network/tcp-proxy.ts';
import { plainIp } from '../http/headers.ts';
import type { RouteConfigProviders } from '../router/rds.ts';
import type { FilterChainConfig, ListenerConfig } from './types.ts';
import { selectFilterChain } from './filter-chain-match.ts';
import { formatAddress } from './compile.ts';
import { InspectionStats, inspectConnection, PLAINTEXT_FACTS } from './inspectors/inspect.ts';
import type { DetectedFacts } from './inspectors/inspect.ts';
import { DownstreamTls } from '../tls/downstream.ts';
import { SecretManager } from '../tls/secrets.ts';
import { TlsStats } from '../tls/tls-stats.ts';
import { TelemetryContext } from '../telemetry/context.ts';
import { tcpObservers } from '../telemetry/tcp-stats.ts';
import { peerExchangeOf } from '../network/peer-exchange.ts';
import { originalDestination } from '../network/original-dst.ts';

type TerminalRuntime = { kind: 'http'; hcm: HcmRuntime } | { kind: 'tcp'; tcp: TcpProxy };

/** A filter chain's runtime and the connections it owns. */
interface Terminal {
  readonly runtime: TerminalRuntime;
  /** Identifies the chain's configuration: equal keys mean an unchanged chain whose runtime is kept. */
  readonly key: string;
  readonly sockets: Set<Socket>;
  /** The chain's TLS termination, when it has a transport_socket. */
  readonly tls: DownstreamTls | undefined;
  draining: boolean;
  drainTimer: NodeJS.Timeout | null;
}

export interface ListenerDeps {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  readonly routes?: RouteConfigProviders;
  /** Named TLS secrets for filter chains' transport sockets. */
  readonly secrets?: SecretManager;
  /** Shared telemetry (node, access log sinks, tracing exporters). */
  readonly telemetry?: TelemetryContext;
}

let uniqueKey = 0;

/** Keys that match nothing: a listener built without keys never shares a chain runtime. */
function freshKeys(config: ListenerConfig): string[] {
  const n = config.filterChains.length + (config.defaultFilterChain ? 1 : 0);
  return Array.from({ length: n }, () => `#${++uniqueKey}`);
}

function chainsOf(config: ListenerConfig): FilterChainConfig[] {
  return [...config.filterChains, ...(config.defaultFilterChain ? [config.defaultFilterChain] : [])];
}

export class ActiveListener {
  config: ListenerConfig;
  private server: Server | null = null;
  private terminals = new Map<FilterChainConfig, Terminal>();
  private readonly draining = new Set<Terminal>();
  private readonly deps: ListenerDeps & {
    readonly secrets: SecretManager;
    readonly telemetry: TelemetryContext;
  };
  /** `listener.<address>.`: Envoy's stat prefix for this listener. */
  private readonly statPrefix: string;
  private tlsStats: TlsStats | undefined;
  private readonly cxTotal: Counter;
  private readonly cxActive: Gauge;
  private readonly noChainMatch: Counter;
  private readonly inspectionStats: InspectionStats;
  /** Connections still in their listener filters (no chain yet). */
  private readonly inspecting = new Set<Socket>();
  private closed = false;
  boundPort = 0;

  /** `chainKeys` (one per filter chain, then the default chain) let a later update keep unchanged chains. */
  constructor(
    config: ListenerConfig,
    clusters: ClusterManager,
    stats: StatsStore,
    extra: {
      routes?: RouteConfigProviders;
      chainKeys?: readonly string[];
      secrets?: SecretManager;
      telemetry?: TelemetryContext;
    } = {},
  ) {
    this.config = config;
    this.deps = {
      clusters,
      stats,
      routes: extra.routes,
      secrets: extra.secrets ?? new SecretManager(),
      telemetry: extra.telemetry ?? new TelemetryContext(clusters, stats),
    };
    const host = config.address.host.includes(':') ? `[${config.address.host}]` : config.address.host;
    const p = `listener.${host}_${config.address.port}.`;
    this.statPrefix = p;
    const keys = extra.chainKeys ?? freshKeys(config);
    chainsOf(config).forEach((chain, i) => this.terminals.set(chain, this.buildTerminal(chain, keys[i])));
    this.cxTotal = stats.counter(p + 'downstream_cx_total');
    this.cxActive = stats.gauge(p + 'downstream_cx_active');
    this.noChainMatch = stats.counter(p + 'no_filter_chain_match');
    this.inspectionStats = new InspectionStats(stats, p);
  }

  private buildTerminal(chain: FilterChainConfig, key: string): Terminal {
    const terminal = chain.filters[chain.filters.length - 1];
    // The compile guarantees a terminal filter last.
    if (terminal.kind === 'istio_stats' || terminal.kind === 'peer_exchange')
      throw new Error('a filter chain must end with a terminal filter');
    const { clusters, stats, routes, telemetry } = this.deps;
    const trafficDirection = this.config.trafficDirection;
    const runtime: TerminalRuntime =
      terminal.kind === 'http_connection_manager'
        ? {
            kind: 'http',
            hcm: new HcmRuntime(terminal.hcm, { clusters, stats, routes, telemetry, trafficDirection }),
          }
        : {
            kind: 'tcp',
            tcp: new TcpProxy(
              terminal.tcpProxy,
              clusters,
              stats,
              telemetry,
              tcpObservers(chain, { clusters, stats, node: telemetry?.node, trafficDirection }),
              peerExchangeOf(chain, telemetry?.node),
            ),
          };
    let tls: DownstreamTls | undefined;
    if (chain.tls !== undefined) {
      this.tlsStats ??= new TlsStats(stats, this.statPrefix);
      tls = new DownstreamTls(chain.tls, this.deps.secrets, this.tlsStats, (secure) => {
        if (runtime.kind === 'http') runtime.hcm.handleConnection(secure);
        else runtime.tcp.handleConnection(secure);
      });
    }
    return { runtime, key, sockets: new Set(), tls, draining: false, drainTimer: null };
  }

  listen(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, (s) =>
      this.onConnection(s),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.address.host, port: this.config.address.port, backlog: 1024 }, () => {
        server.removeListener('error', reject);
        server.on('error', () => undefined);
        const addr = server.address();
        this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
        resolve();
      });
    });
  }

  private onConnection(socket: Socket): void {
    this.cxTotal.inc();
    this.cxActive.inc();
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.cxActive.dec());
    const inspection = this.config.inspection;
    if (inspection === undefined) return this.dispatch(socket, PLAINTEXT_FACTS);
    this.inspecting.add(socket);
    socket.once('close', () => this.inspecting.delete(socket));
    inspectConnection(socket, inspection, this.inspectionStats, (facts) => {
      this.inspecting.delete(socket);
      // The listener may have been destroyed while the client was being inspected.
      if (this.closed) socket.destroy();
      else this.dispatch(socket, facts);
    });
  }

  /** Picks the filter chain by the connection's facts and hands the socket to its terminal filter. */
  private dispatch(socket: Socket, facts: DetectedFacts): void {
    // A connection iptables redirected here is matched by where the client sent it, as Envoy's original_dst
    // listener filter restores the local address; one that was not redirected keeps its own.
    const restored = this.config.originalDst === true ? originalDestination(socket) : undefined;
    const chain = selectFilterChain(this.config.filterChains, this.config.defaultFilterChain, {
      localIp: restored?.address ?? plainIp(socket.localAddress),
      localPort: restored?.port ?? socket.localPort ?? 0,
      remoteIp: plainIp(socket.remoteAddress),
      ...facts,
    });
    const terminal = chain === undefined ? undefined : this.terminals.get(chain);
    if (terminal === undefined) {
      this.noChainMatch.inc();
      socket.destroy();
      return;
    }
    terminal.sockets.add(socket);
    socket.once('close', () => {
      terminal.sockets.delete(socket);
      if (terminal.draining && terminal.sockets.size === 0) this.finishDrain(terminal);
    });
    // TLS chains hand the decrypted socket on once the handshake and peer verification succeeded.
    if (terminal.tls !== undefined) return terminal.tls.accept(socket);
    const runtime = terminal.runtime;
    if (runtime.kind === 'http') runtime.hcm.handleConnection(socket);
    else runtime.tcp.handleConnection(socket);
  }

  /**
   * Switches to a new configuration of this listener at the same address: chains whose key is unchanged
   * keep their runtime and connections; the others drain for up to `drainMs`. Returns how many chains
   * were kept.
   */
  update(config: ListenerConfig, chainKeys: readonly string[], drainMs: number): number {
    const old = new Map<string, Terminal>();
    for (const t of this.terminals.values()) old.set(t.key, t);
    const next = new Map<FilterChainConfig, Terminal>();
    let kept = 0;
    chainsOf(config).forEach((chain, i) => {
      const key = chainKeys[i];
      const reuse = old.get(key);
      if (reuse !== undefined) {
        old.delete(key);
        kept++;
        next.set(chain, reuse);
      } else next.set(chain, this.buildTerminal(chain, key));
    });
    this.config = config;
    this.terminals = next;
    for (const t of old.values()) this.startDrain(t, drainMs, false);
    return kept;
  }

  private startDrain(t: Terminal, drainMs: number, closeIdle: boolean): void {
    if (t.runtime.kind === 'http') t.runtime.hcm.drain(closeIdle);
    if (t.draining) return;
    t.draining = true;
    this.draining.add(t);
    if (t.sockets.size === 0) return this.finishDrain(t);
    t.drainTimer = setTimeout(() => this.finishDrain(t), drainMs);
    t.drainTimer.unref();
  }

  /** The end of a chain's drain: whatever is left is closed and the runtime's timers stop. */
  private finishDrain(t: Terminal): void {
    if (!this.draining.delete(t)) return;
    if (t.drainTimer !== null) clearTimeout(t.drainTimer);
    t.drainTimer = null;
    destroyTerminal(t);
  }

  /** Stops accepting; existing connections go on. HTTP connection managers start draining. */
  stopAccepting(): void {
    this.server?.close();
    for (const t of this.terminals.values()) if (t.runtime.kind === 'http') t.runtime.hcm.drain();
  }

  /**
   * A removed listener: stops accepting, drains every connection for up to `drainMs` and resolves once
   * they are all gone.
   */
  retire(drainMs: number): Promise<void> {
    this.server?.close();
    // A connection not yet on a chain has nothing to drain.
    for (const s of this.inspecting) s.destroy();
    for (const t of this.terminals.values()) this.startDrain(t, drainMs, false);
    this.terminals = new Map();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.draining.size === 0) resolve();
        else setTimeout(check, 50).unref();
      };
      check();
    });
  }

  /** Open downstream connections, on current and draining chains. */
  connectionCount(): number {
    let n = this.inspecting.size;
    for (const t of this.terminals.values()) n += t.sockets.size;
    for (const t of this.draining) n += t.sockets.size;
    return n;
  }

  busy(): boolean {
    for (const t of [...this.terminals.values(), ...this.draining]) {
      if (t.runtime.kind === 'http' && t.runtime.hcm.busy()) return true;
    }
    return false;
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.server?.close();
    for (const s of this.inspecting) s.destroy();
    for (const t of [...this.terminals.values(), ...this.draining]) {
      if (t.drainTimer !== null) clearTimeout(t.drainTimer);
      destroyTerminal(t);
    }
    this.draining.clear();
  }
}

function destroyTerminal(t: Terminal): void {
  t.tls?.release();
  if (t.runtime.kind === 'http') t.runtime.hcm.destroy();
  else t.runtime.tcp.destroyAll();
  for (const s of t.sockets) s.destroy();
}

/**
 * How a listener configuration was applied, for the listener manager's stats: a new listener, an update
 * at the same address (its socket kept: Envoy's in-place filter chain update), or a move to a new socket.
 */
export type ListenerChange = 'added' | 'in_place' | 'moved';

/**
 * The proxy's listeners by name: static ones from the bootstrap and dynamic ones from LDS. Binding is
 * separated from activation (prepare, then commit) so an LDS update whose sockets cannot all be bound is
 * refused before anything changes.
 */
export class ListenerManager {
  private readonly active = new Map<string, ActiveListener>();
  private readonly retiring = new Set<ActiveListener>();
  private readonly deps: ListenerDeps;
  private readonly drainMs: () => number;

  constructor(deps: ListenerDeps, drainMs: () => number) {
    this.deps = deps;
    this.drainMs = drainMs;
  }

  get(name: string): ActiveListener | undefined {
    return this.active.get(name);
  }

  all(): IterableIterator<ActiveListener> {
    return this.active.values();
  }

  /** Listeners stopped or replaced at another address, still draining their connections. */
  drainingCount(): number {
    return this.retiring.size;
  }

  /**
   * Binds what a configuration needs before anything changes: a new listener, or an existing one moving
   * to another address, gets a fresh bound ActiveListener; an update at the same address needs nothing.
   */
  async prepare(config: ListenerConfig, chainKeys: readonly string[]): Promise<ActiveListener | null> {
    const current = this.active.get(config.name);
    if (current !== undefined && sameAddress(current.config, config)) return null;
    const { clusters, stats, routes, secrets, telemetry } = this.deps;
    const listener = new ActiveListener(config, clusters, stats, { routes, chainKeys, secrets, telemetry });
    try {
      await listener.listen();
    } catch (err) {
      listener.destroy();
      throw new Error(
        `cannot bind listener ${JSON.stringify(config.name)} to ${formatAddress(config.address)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return listener;
  }

  /** Makes a prepared configuration the active one (never fails). */
  commit(
    config: ListenerConfig,
    chainKeys: readonly string[],
    prepared: ActiveListener | null,
  ): ListenerChange {
    const current = this.active.get(config.name);
    if (prepared === null) {
      if (current === undefined) throw new Error(`listener ${config.name} was not prepared`);
      current.update(config, chainKeys, this.drainMs());
      return 'in_place';
    }
    this.active.set(config.name, prepared);
    if (current === undefined) return 'added';
    this.retire(current);
    return 'moved';
  }

  /** Stops a listener and drains its connections. */
  remove(name: string): boolean {
    const current = this.active.get(name);
    if (current === undefined) return false;
    this.active.delete(name);
    this.retire(current);
    return true;
  }

  private retire(listener: ActiveListener): void {
    this.retiring.add(listener);
    void listener.retire(this.drainMs()).then(() => {
      this.retiring.delete(listener);
      listener.destroy();
    });
  }

  stopAccepting(): void {
    for (const l of this.active.values()) l.stopAccepting();
  }

  busy(): boolean {
    for (const l of [...this.active.values(), ...this.retiring]) if (l.busy()) return true;
    return false;
  }

  destroy(): void {
    for (const l of [...this.active.values(), ...this.retiring]) l.destroy();
    this.retiring.clear();
  }
}

function sameAddress(a: ListenerConfig, b: ListenerConfig): boolean {
  return a.address.host === b.address.host && a.address.port === b.address.port;
}
