/** `weft proxy-status`: what each connected proxy has, per xDS type, from the control plane's /debug/syncz. */
import { formatSyncTable } from '../control/debug/sync-table.ts';
import type { ProxyStatus } from '../control/xds/ads-server.ts';
import { fetchDebugJson } from '../control/debug/client.ts';

export interface ProxyStatusOptions {
  controlPlane: string;
  output: 'table' | 'json';
}

export async function runProxyStatus(opts: ProxyStatusOptions): Promise<number> {
  const result = await fetchDebugJson<ProxyStatus[]>(opts.controlPlane, '/debug/syncz');
  if (!result.ok) {
    process.stderr.write(`weft: ${result.error}\n`);
    return 1;
  }
  if (opts.output === 'json') process.stdout.write(`${JSON.stringify(result.value, null, 2)}\n`);
  else if (result.value.length === 0) process.stdout.write('no proxies connected\n');
  else process.stdout.write(formatSyncTable(result.value));
  return 0;
}
