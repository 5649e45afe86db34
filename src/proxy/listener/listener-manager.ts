/**
 * Binds each listener, selects a filter chain per accepted connection and hands the socket to the chain's
 * terminal network filter (HTTP connection manager or TCP proxy). Runtime objects are built once per config.
 */
import net from 'node:net';
import type { Server, Socket } from 'node:net';
import type { StatsStore, Counter, Gauge } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { HcmRuntime } from '../http/connection-manager.ts';
import { TcpProxy } from '../network/tcp-proxy.ts';
import { plainIp } from '../http/headers.ts';
import type { FilterChainConfig, ListenerConfig } from './types.ts';
import { selectFilterChain } from './filter-chain-match.ts';

type Terminal = { kind: 'http'; hcm: HcmRuntime } | { kind: 'tcp'; tcp: TcpProxy };

export class ActiveListener {
  readonly config: ListenerConfig;
  private server: Server | null = null;
  private readonly terminals = new Map<FilterChainConfig, Terminal>();
  private readonly sockets = new Set<Socket>();
  private readonly cxTotal: Counter;
  private readonly cxActive: Gauge;
  private readonly noChainMatch: Counter;
  boundPort = 0;

  constructor(config: ListenerConfig, clusters: ClusterManager, stats: StatsStore) {
    this.config = config;
    const chains = [
      ...config.filterChains,
      ...(config.defaultFilterChain ? [config.defaultFilterChain] : []),
    ];
    for (const chain of chains) {
      const terminal = chain.filters[chain.filters.length - 1];
      if (terminal.kind === 'http_connection_manager') {
        this.terminals.set(chain, { kind: 'http', hcm: new HcmRuntime(terminal.hcm, { clusters, stats }) });
      } else {
        this.terminals.set(chain, { kind: 'tcp', tcp: new TcpProxy(terminal.tcpProxy, clusters, stats) });
      }
    }
    const host = config.address.host.includes(':') ? `[${config.address.host}]` : config.address.host;
    const p = `listener.${host}_${config.address.port}.`;
    this.cxTotal = stats.counter(p + 'downstream_cx_total');
    this.cxActive = stats.gauge(p + 'downstream_cx_active');
    this.noChainMatch = stats.counter(p + 'no_filter_chain_match');
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
    this.sockets.add(socket);
    socket.once('close', () => {
      this.cxActive.dec();
      this.sockets.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    const chain = selectFilterChain(this.config.filterChains, this.config.defaultFilterChain, {
      localIp: plainIp(socket.localAddress),
      localPort: socket.localPort ?? 0,
      remoteIp: plainIp(socket.remoteAddress),
      transportProtocol: 'raw_buffer',
      serverName: undefined,
    });
    const terminal = chain === undefined ? undefined : this.terminals.get(chain);
    if (terminal === undefined) {
      this.noChainMatch.inc();
      socket.destroy();
      return;
    }
    if (terminal.kind === 'http') terminal.hcm.handleConnection(socket);
    else terminal.tcp.handleConnection(socket);
  }

  /** Stops accepting; existing connections go on. HTTP connection managers start draining. */
  stopAccepting(): void {
    this.server?.close();
    for (const t of this.terminals.values()) if (t.kind === 'http') t.hcm.drain();
  }

  busy(): boolean {
    for (const t of this.terminals.values()) if (t.kind === 'http' && t.hcm.busy()) return true;
    return false;
  }

  destroy(): void {
    this.server?.close();
    for (const t of this.terminals.values()) {
      if (t.kind === 'http') t.hcm.destroy();
      else t.tcp.destroyAll();
    }
    for (const s of this.sockets) s.destroy();
  }
}
