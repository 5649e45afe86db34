/**
 * The shop demo (examples/shop) run by `weft up` from a throwaway copy: shared by bench/up/startup.ts and
 * test/e2e/shop-mesh.test.ts, so that both run the demo exactly as shipped apart from its fixed host ports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parseDocument } from 'yaml';

import { launcherNodeFlags, REPO } from '../../test/support/proxy.ts';
import { WEFT } from '../../test/support/weft-cli.ts';

export { launcherNodeFlags, REPO, WEFT };
export const SHOP = path.join(REPO, 'examples/shop');

/**
 * Copies the demo into `dir` (without its .weft/ run state) with the control plane on free ports (0) and the
 * gateway on `gatewayPort`; the apps' service ports stay. node_modules is linked: the Node apps import
 * @grpc/grpc-js, which Node resolves from the file's directory upwards.
 */
export function copyShop(dir: string, gatewayPort: number): void {
  fs.cpSync(SHOP, dir, {
    recursive: true,
    filter: (src) => !['.weft', 'node_modules'].includes(path.basename(src)),
  });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const meshFile = path.join(dir, 'weft.yaml');
  const mesh = parseDocument(fs.readFileSync(meshFile, 'utf8'));
  mesh.setIn(['mesh', 'controlPlane'], { xdsPort: 0, debugPort: 0, dashboardPort: 0 });
  mesh.setIn(['gateway', 'ports'], [gatewayPort]);
  fs.writeFileSync(meshFile, mesh.toString());
  const gatewayFile = path.join(dir, 'gateway.yaml');
  const docs = parseAllDocuments(fs.readFileSync(gatewayFile, 'utf8'));
  let gateways = 0;
  for (const doc of docs) {
    if ('errors' in doc && doc.errors.length > 0) throw doc.errors[0];
    if (doc.get('kind') !== 'Gateway') continue;
    doc.setIn(['spec', 'servers', 0, 'port', 'number'], gatewayPort);
    gateways++;
  }
  if (gateways !== 1) throw new Error(`${gatewayFile}: expected one Gateway, found ${gateways}`);
  // A document after the first prints its own `---` marker: one separator each, never an empty document.
  fs.writeFileSync(gatewayFile, docs.map((d) => d.toString().replace(/^---\n/, '')).join('---\n'));
}

/** Live (not zombie) processes whose command line mentions `dir` or whose working directory is inside it. */
export function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (/\) Z /.test(fs.readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
      } catch {
        // another user's process
      }
      if (cmd.includes(dir) || cwd === dir || cwd.startsWith(dir + path.sep)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** SIGKILLs what is left of a mesh run from `dir` (cleanup after a failure). */
export function killLeftovers(dir: string): void {
  for (const pid of processesOf(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
