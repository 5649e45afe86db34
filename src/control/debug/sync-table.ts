/** The proxy-status table (one row per ADS stream, one column per xDS type), shared by /debug/syncz?format=table and the CLI. */
import type { ProxyStatus, TypeStatus } from '../xds/ads-server.ts';
import { TYPE_URL } from '../xds/types.ts';
import { formatTable } from './table.ts';

const COLUMNS: readonly [string, string][] = [
  ['CDS', TYPE_URL.cluster],
  ['LDS', TYPE_URL.listener],
  ['EDS', TYPE_URL.endpoint],
  ['RDS', TYPE_URL.route],
];

/** How a proxy is named in tables and on the command line: NAME.NAMESPACE, as istioctl names pods. */
export function proxyDisplayName(status: Pick<ProxyStatus, 'node'>): string {
  return `${status.node.name}.${status.node.namespace}`;
}

function cell(type: TypeStatus | undefined): string {
  if (!type) return 'NOT SENT';
  return `${type.state} (${type.lastSentVersion.slice(0, 8)})`;
}

export function formatSyncTable(statuses: readonly ProxyStatus[]): string {
  const withSds = statuses.some((s) => s.types.some((t) => t.typeUrl === TYPE_URL.secret));
  const columns = withSds ? [...COLUMNS, ['SDS', TYPE_URL.secret] as [string, string]] : COLUMNS;
  const rows = statuses.map((s) => {
    const byType = new Map(s.types.map((t) => [t.typeUrl, t]));
    return [proxyDisplayName(s), s.node.type, s.stream, ...columns.map(([, url]) => cell(byType.get(url)))];
  });
  let out = formatTable(['NAME', 'TYPE', 'XDS', ...columns.map(([name]) => name)], rows);
  const nacks = statuses.flatMap((s) =>
    s.types
      .filter((t) => t.state === 'NACK')
      .map((t) => {
        const short = columns.find(([, url]) => url === t.typeUrl)?.[0] ?? t.typeUrl;
        return `${proxyDisplayName(s)} ${short} NACK: ${t.error ?? ''}`;
      }),
  );
  if (nacks.length > 0) out += `\n${nacks.join('\n')}\n`;
  return out;
}
