/**
 * Envoy's /clusters output: `cluster::key::value` lines (what scripts and `istioctl`-style tools
 * grep), and the admin.v3.Clusters message as proto3 JSON for `?format=json`.
 */
import type { HealthStatus, Host } from '../upstream/types.ts';
import type { AdminClusterStatus } from './types.ts';

/**
 * Envoy prints a host's health as flags; besides outlier ejection Weft's health source is EDS, so each
 * status maps to the EDS flag Envoy would print for it.
 */
const HEALTH_FLAGS: Readonly<Record<HealthStatus, string>> = {
  HEALTHY: 'healthy',
  UNHEALTHY: '/failed_eds_health',
  DEGRADED: '/degraded_eds_health',
  DRAINING: '/eds_status_draining',
};

/** Envoy's flag string: outlier ejection comes before the EDS flags, and "healthy" only when nothing is set. */
function healthFlags(h: Host): string {
  const eds = h.health === 'HEALTHY' ? '' : (HEALTH_FLAGS[h.health] ?? h.health);
  const flags = (h.outlierEjected === true ? '/failed_outlier_check' : '') + eds;
  return flags === '' ? 'healthy' : flags;
}

export function renderClustersText(clusters: readonly AdminClusterStatus[]): string {
  const out: string[] = [];
  for (const c of clusters) {
    const n = c.name;
    out.push(`${n}::observability_name::${n}\n`);
    for (const [k, v] of Object.entries(c.extras ?? {})) out.push(`${n}::${k}::${v}\n`);
    for (const h of c.hosts) {
      const p = `${n}::${h.key}::`;
      const cx = c.connectionCount?.(h);
      if (cx !== undefined) out.push(`${p}cx_active::${cx}\n`);
      out.push(
        `${p}rq_active::${h.activeRequests}\n`,
        `${p}hostname::${h.hostname ?? ''}\n`,
        `${p}health_flags::${healthFlags(h)}\n`,
        `${p}weight::${h.weight}\n`,
        `${p}region::${h.locality.region}\n`,
        `${p}zone::${h.locality.zone}\n`,
        `${p}sub_zone::${h.locality.subZone}\n`,
        `${p}canary::false\n`,
        `${p}priority::${h.priority}\n`,
        // Envoy prints -1 when outlier detection has no success rate; Weft computes none yet.
        `${p}success_rate::-1\n`,
        `${p}local_origin_success_rate::-1\n`,
      );
    }
  }
  return out.join('');
}

/** admin.v3.Clusters in proto3 JSON (uint64 stat values as strings). Extras are text-only. */
export function renderClustersJson(clusters: readonly AdminClusterStatus[]): unknown {
  return {
    cluster_statuses: clusters.map((c) => ({
      name: c.name,
      observability_name: c.name,
      host_statuses: c.hosts.map((h) => {
        const stats: { name: string; type: string; value: string }[] = [];
        const cx = c.connectionCount?.(h);
        if (cx !== undefined) stats.push({ name: 'cx_active', type: 'GAUGE', value: String(cx) });
        stats.push({ name: 'rq_active', type: 'GAUGE', value: String(h.activeRequests) });
        return {
          address: { socket_address: { address: h.address, port_value: h.port } },
          stats,
          health_status:
            h.outlierEjected === true
              ? { eds_health_status: h.health, failed_outlier_check: true }
              : { eds_health_status: h.health },
          weight: h.weight,
          hostname: h.hostname ?? '',
          priority: h.priority,
          locality: { region: h.locality.region, zone: h.locality.zone, sub_zone: h.locality.subZone },
        };
      }),
    })),
  };
}
