/**
 * istiod's xDS metric names (pilot_*) over the ADS server's events and state, so dashboards and alerts made
 * for istiod read Weft's control plane too. Names, types, labels and buckets are istiod's; where Weft knows
 * less than istiod (a NACK's gRPC code), docs/metrics.md says what the label holds instead.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AdsServer, NackEvent, ProxyStatus, SentEvent } from '../xds/ads-server.ts';
import { SHORT_TYPE_NAME } from '../xds/type-state.ts';

/** istiod's buckets for pilot_proxy_convergence_time (seconds). */
const CONVERGENCE_BUCKETS = [0.1, 0.5, 1, 3, 5, 10, 20, 30];
/** istiod's buckets for pilot_xds_push_time (seconds). */
const PUSH_TIME_BUCKETS = [0.01, 0.1, 1, 3, 5, 10, 20, 30];
/** The types istiod keeps a per-proxy reject gauge for. */
const REJECT_GAUGE_TYPES = ['cds', 'eds', 'lds', 'rds'] as const;
/** A NACK's message is a label value: long ones are cut, as a label is for telling errors apart. */
const ERR_LABEL_MAX = 120;

function errLabel(message: string | undefined): string {
  const line = (message ?? '').split('\n', 1)[0];
  return line.length > ERR_LABEL_MAX ? `${line.slice(0, ERR_LABEL_MAX)}...` : line;
}

function proxyVersion(metadata: Readonly<Record<string, unknown>>): string {
  const v = metadata.ISTIO_VERSION;
  return typeof v === 'string' && v !== '' ? v : 'unknown';
}

export interface IstiodMetrics {
  /** Runs one scrape's collection with one sync-state snapshot, taken once for all the gauges that read it. */
  scrape<T>(collect: () => Promise<T>): Promise<T>;
  close(): void;
}

export function istiodMetrics(ads: AdsServer, registry: Registry): IstiodMetrics {
  const registers = [registry];
  // ads.status() walks every stream; with thousands of proxies it is worth taking once per scrape.
  let snapshot: readonly ProxyStatus[] | null = null;
  const status = (): readonly ProxyStatus[] => (snapshot ??= ads.status());
  new Gauge({
    name: 'pilot_xds',
    help: 'Proxies with an open ADS stream, by the Istio version they report (istiod name).',
    labelNames: ['version'],
    registers,
    collect() {
      this.reset();
      const byVersion = new Map<string, number>();
      for (const s of status()) {
        const v = proxyVersion(s.node.metadata);
        byVersion.set(v, (byVersion.get(v) ?? 0) + 1);
      }
      for (const [version, n] of byVersion) this.labels(version).set(n);
    },
  });
  const pushes = new Counter({
    name: 'pilot_xds_pushes',
    help: 'xDS responses written, by type (istiod name; same as weft_xds_pushes_total).',
    labelNames: ['type'],
    registers,
  });
  const pushTime = new Histogram({
    name: 'pilot_xds_push_time',
    help: 'Seconds from a config change to a pushed response written, by type (istiod name).',
    labelNames: ['type'],
    buckets: PUSH_TIME_BUCKETS,
    registers,
  });
  const convergence = new Histogram({
    name: 'pilot_proxy_convergence_time',
    help: 'Seconds from a config change to a pushed response written to a proxy (istiod name; one observation per pushed response).',
    buckets: CONVERGENCE_BUCKETS,
    registers,
  });
  const rejects = new Counter({
    name: 'pilot_total_xds_rejects',
    help: 'xDS responses proxies rejected (NACK), by type (istiod name; same as weft_xds_nacks_total).',
    labelNames: ['type'],
    registers,
  });
  // Per proxy: 1 while the proxy's latest response of the type stands rejected (from the sync state, so a
  // later ACK or a disconnect clears it).
  for (const type of REJECT_GAUGE_TYPES) {
    new Gauge({
      name: `pilot_xds_${type}_reject`,
      help: `1 per proxy whose latest ${type.toUpperCase()} response stands rejected, with its error (istiod name).`,
      labelNames: ['node', 'err'],
      registers,
      collect() {
        this.reset();
        for (const s of status())
          for (const t of s.types)
            if (t.state === 'NACK' && SHORT_TYPE_NAME[t.typeUrl] === type)
              this.labels(s.node.id, errLabel(t.error)).set(1);
      },
    });
  }
  for (const type of Object.values(SHORT_TYPE_NAME)) {
    pushes.labels(type).inc(0);
    rejects.labels(type).inc(0);
  }

  const onSent = (e: SentEvent): void => {
    const type = SHORT_TYPE_NAME[e.typeUrl];
    pushes.labels(type).inc();
    if (e.pushSeconds === null) return;
    pushTime.labels(type).observe(e.pushSeconds);
    convergence.observe(e.pushSeconds);
  };
  const onNack = (e: NackEvent): void => rejects.labels(SHORT_TYPE_NAME[e.typeUrl]).inc();
  ads.on('sent', onSent);
  ads.on('nack', onNack);
  return {
    async scrape(collect) {
      snapshot = null;
      try {
        return await collect();
      } finally {
        snapshot = null;
      }
    },
    close() {
      ads.off('sent', onSent);
      ads.off('nack', onNack);
    },
  };
}
