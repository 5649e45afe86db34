/** Running the `weft` command (bin/weft.js, from dist/) as a user would, and finding what it left running. */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launcherNodeFlags, REPO } from './proxy.ts';

export const WEFT = path.join(REPO, 'bin/weft.js');

export interface WeftResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `weft ARGS…` to completion (bounded), with the launcher's Node flags. */
export function weft(args: readonly string[], timeoutMs = 60_000): Promise<WeftResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...launcherNodeFlags(), WEFT, ...args],
      { timeout: timeoutMs },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
}

/** Pids of live (not zombie) processes whose command line mentions `text`. */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (cmd.includes(text) && !/\) Z /.test(stat)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** A Gateway on the ingress gateway's `gatewayPort` and a VirtualService sending every host to `host:port`. */
export function gatewayToService(gatewayPort: number, host: string, port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: ${gatewayPort}, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: ${host}, port: {number: ${port}}}}]}]
`;
}
