/** `weft proxy-config (listeners|routes|clusters|endpoints) PROXY`: one proxy's generated config, from /debug/config_dump. */
import { CONFIG_KINDS, formatConfigTable, resourcesOf } from '../control/debug/config-tables.ts';
import type { ConfigKind } from '../control/debug/config-tables.ts';
import type { JsonObject } from '../core/json.ts';
import { fetchDebugJson } from '../control/debug/client.ts';

export interface ProxyConfigOptions {
  controlPlane: string;
  output: 'table' | 'json';
}

export async function runProxyConfig(kind: string, proxy: string, opts: ProxyConfigOptions): Promise<number> {
  if (!(CONFIG_KINDS as readonly string[]).includes(kind)) {
    process.stderr.write(
      `weft: unknown kind ${JSON.stringify(kind)}: expected one of ${CONFIG_KINDS.join(', ')}\n`,
    );
    return 2;
  }
  const what = kind as ConfigKind;
  const result = await fetchDebugJson<JsonObject>(
    opts.controlPlane,
    `/debug/config_dump?proxyID=${encodeURIComponent(proxy)}`,
  );
  if (!result.ok) {
    process.stderr.write(`weft: ${result.error}\n`);
    return 1;
  }
  if (opts.output === 'json')
    process.stdout.write(`${JSON.stringify(resourcesOf(result.value, what), null, 2)}\n`);
  else process.stdout.write(formatConfigTable(result.value, what));
  return 0;
}
