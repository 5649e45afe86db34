/**
 * Builds the SO_ORIGINAL_DST addon (native/original-dst/) with the system C compiler, no node-gyp.
 *
 * Transparent capture is optional, so this never fails the build: when the addon cannot be built it
 * prints one line, records why in build/native/original_dst.unavailable (src/proxy/network/original-dst.ts
 * reports that reason) and exits 0, and `weft up` uses explicit proxy mode.
 *
 * Run: node scripts/build-native.ts
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(repo, 'native/original-dst/original_dst.c');
const outDir = path.join(repo, 'build/native');
const output = path.join(outDir, 'original_dst.node');
const unavailable = path.join(outDir, 'original_dst.unavailable');

function fail(reason: string): never {
  try {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(unavailable, `${reason}\n`);
    // A stale addon from an earlier build would contradict the reason just written.
    fs.rmSync(output, { force: true });
  } catch {
    // The message below is all a read-only tree can get.
  }
  process.stderr.write(
    `weft: transparent capture unavailable: cannot build the SO_ORIGINAL_DST addon (${reason}); weft up falls back to explicit proxy mode\n`,
  );
  process.exit(0);
}

/**
 * Where node_api.h is. The official tarball layout puts it at <prefix>/include/node, but the `node`
 * npm package hard-links its binary into node_modules/node/bin, so realpath cannot reach the
 * node-<platform>-<arch> package that holds the headers; look there too. Node-API is ABI-stable, so
 * a system Node's headers are an acceptable last resort (NAPI_VERSION is pinned in the source).
 */
function nodeIncludeDir(): string | undefined {
  const binDir = path.dirname(fs.realpathSync(process.execPath));
  const candidates = [
    path.join(binDir, '..', 'include', 'node'),
    path.join(binDir, '..', 'node_modules', `node-${process.platform}-${process.arch}`, 'include', 'node'),
    path.join(binDir, '..', '..', `node-${process.platform}-${process.arch}`, 'include', 'node'),
    '/usr/local/include/node',
    '/usr/include/node',
  ];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
}

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

function main(): void {
  // SO_ORIGINAL_DST is a Linux netfilter socket option; nothing to build elsewhere.
  if (process.platform !== 'linux') fail(`not Linux (${process.platform})`);
  if (!fs.existsSync(source)) fail(`source missing: ${path.relative(repo, source)}`);

  if (fs.existsSync(output) && fs.statSync(output).mtimeMs > fs.statSync(source).mtimeMs) {
    fs.rmSync(unavailable, { force: true });
    return;
  }

  const cc = findOnPath('cc');
  if (cc === undefined) fail('cc not found');
  const include = nodeIncludeDir();
  if (include === undefined) fail('Node headers (node_api.h) not found');

  fs.mkdirSync(outDir, { recursive: true });
  // Compile to a temporary name so an interrupted or failed build never leaves a half-written addon.
  const temporary = `${output}.tmp-${process.pid}`;
  const args = ['-O2', '-shared', '-fPIC', '-Wall', '-Werror', `-I${include}`, '-o', temporary, source];
  const result = spawnSync(cc, args, { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    fs.rmSync(temporary, { force: true });
    const detail =
      result.error?.message ??
      (
        result.stderr.split('\n').find((line) => line.includes('error')) ??
        result.stderr.trim().split('\n')[0] ??
        ''
      )
        .trim()
        .slice(0, 300);
    fail(`${path.basename(cc)} failed${detail === '' ? '' : `: ${detail}`}`);
  }
  fs.renameSync(temporary, output);
  fs.rmSync(unavailable, { force: true });
}

main();
