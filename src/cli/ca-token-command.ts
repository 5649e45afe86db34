/** `weft ca-token`: a workload's bootstrap token, minted from the control plane's token key. */
import fs from 'node:fs';
import { WorkloadTokens } from '../control/ca/workload-tokens.ts';
import { parseIstioDurationMs } from '../config/duration.ts';

export interface CaTokenOptions {
  serviceAccount: string;
  namespace: string;
  stateDir: string;
  ttl: string;
  output?: string;
}

export function runCaToken(opts: CaTokenOptions): number {
  const ttl = parseIstioDurationMs(opts.ttl);
  if (ttl === undefined || ttl <= 0) {
    process.stderr.write(`weft: --ttl ${JSON.stringify(opts.ttl)}: expected a positive Go duration\n`);
    return 1;
  }
  let token: string;
  try {
    token = WorkloadTokens.open(opts.stateDir).issue(
      { namespace: opts.namespace, serviceAccount: opts.serviceAccount },
      ttl,
    );
  } catch (err) {
    process.stderr.write(`weft: ${(err as Error).message}\n`);
    return 1;
  }
  if (opts.output === undefined) {
    process.stdout.write(token + '\n');
    return 0;
  }
  fs.writeFileSync(opts.output, token + '\n', { mode: 0o600 });
  fs.chmodSync(opts.output, 0o600);
  return 0;
}
