/**
 * The control plane's Prometheus metrics: the ADS server's push counters and latencies (fed by its events),
 * the CA's issuance, plus the process metrics prom-client collects (CPU, RSS, heap, event-loop lag, GC).
 * Weft's own names (weft_*) come with istiod's (pilot_*, citadel_server_*) where istiod has an equivalent,
 * so dashboards made for istiod partly work; docs/metrics.md lists both.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CertificateAuthority } from '../ca/authority.ts';
import { istiodMetrics } from './istiod-metrics.ts';
import { caMetrics } from './ca-metrics.ts';
import type { AdsServer, NackEvent, RoundEvent, SentEvent } from '../xds/ads-server.ts';
import { SHORT_TYPE_NAME } from '../xds/type-state.ts';

// Process metrics are per process, not per server: collected once, into their own registry.
let processRegistry: Registry | null = null;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface ControlPlaneMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  close(): void;
}

/**
 * `authority` is read at every scrape, as the control plane may replace its CA (a root rotation) or run
 * none; the CA's metrics are absent while it answers undefined.
 */
export function controlPlaneMetrics(
  ads: AdsServer,
  authority: () => CertificateAuthority | undefined = () => undefined,
): ControlPlaneMetrics {
  const registry = new Registry();
  const registers = [registry];
  const istiod = istiodMetrics(ads, registry);
  const ca = caMetrics(authority);
  new Gauge({
    name: 'weft_xds_connected_proxies',
    help: 'Proxies with an open ADS stream.',
    registers,
    collect() {
      this.set(ads.connectedProxies);
    },
  });
  const pushes = new Counter({
    name: 'weft_xds_pushes_total',
    help: 'xDS responses written, by type (cds, eds, lds, rds, sds).',
    labelNames: ['type'],
    registers,
  });
  const duration = new Histogram({
    name: 'weft_xds_push_duration_seconds',
    help: 'From push() to the response written to the proxy, by type (pushes only, not replies to requests).',
    labelNames: ['type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const nacks = new Counter({
    name: 'weft_xds_nacks_total',
    help: 'Responses a proxy rejected, by type.',
    labelNames: ['type'],
    registers,
  });
  const rounds = new Counter({
    name: 'weft_xds_push_rounds_total',
    help: 'Debounced push rounds, by kind (full or eds).',
    labelNames: ['kind'],
    registers,
  });
  const merged = new Counter({
    name: 'weft_xds_push_requests_total',
    help: 'push() calls merged into rounds.',
    registers,
  });
  const invalid = new Counter({
    name: 'weft_xds_invalid_requests_total',
    help: 'ADS streams ended with INVALID_ARGUMENT (malformed request or node).',
    registers,
  });
  for (const type of Object.values(SHORT_TYPE_NAME)) {
    pushes.labels(type).inc(0);
    nacks.labels(type).inc(0);
  }
  rounds.labels('full').inc(0);
  rounds.labels('eds').inc(0);

  const onSent = (e: SentEvent): void => {
    const type = SHORT_TYPE_NAME[e.typeUrl];
    pushes.labels(type).inc();
    if (e.pushSeconds !== null) duration.labels(type).observe(e.pushSeconds);
  };
  const onNack = (e: NackEvent): void => nacks.labels(SHORT_TYPE_NAME[e.typeUrl]).inc();
  const onRound = (e: RoundEvent): void => {
    rounds.labels(e.full ? 'full' : 'eds').inc();
    merged.inc(e.merged);
  };
  const onInvalid = (): void => invalid.inc();
  ads.on('sent', onSent);
  ads.on('nack', onNack);
  ads.on('round', onRound);
  ads.on('invalid', onInvalid);

  return {
    contentType: registry.contentType,
    render: async () => {
      const parts = [await istiod.scrape(() => registry.metrics())];
      if (authority() !== undefined) parts.push(await ca.metrics());
      parts.push(await processMetrics().metrics());
      return parts.join('\n');
    },
    close: () => {
      ads.off('sent', onSent);
      ads.off('nack', onNack);
      ads.off('round', onRound);
      ads.off('invalid', onInvalid);
      istiod.close();
    },
  };
}
