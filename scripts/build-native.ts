/**
 * Builds Weft's optional Node-API addons with the system C compiler, no node-gyp:
 * - native/original-dst/: SO_ORIGINAL_DST for transparent capture (src/proxy/network/original-dst.ts);
 *   without it `weft up` uses explicit proxy mode;
 * - native/malloc-trim/: glibc's malloc_trim off the event loop (src/proxy/memory-trim.ts); without it a
 *   proxy keeps freed malloc memory resident (10-20 MB under load).
 *
 * Both are optional, so this never fails the build: an addon that cannot be built gets one line on
 * stderr and its reason in build/native/NAME.unavailable (which the loader reports), and the script
 * goes on and exits 0.
 *
 * Run: node scripts/build-native.ts
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(repo, 'build/native');

interface AddonSpec {
  /** The file stem: build/native/NAME.node and NAME.unavailable. */
  readonly name: string;
  readonly source: string;
  /** What goes missing without it, for the one-line notice. */
  readonly without: string;
}

const addons: readonly AddonSpec[] = [
  {
    name: 'original_dst',
    source: 'native/original-dst/original_dst.c',
    without:
      'transparent capture unavailable: cannot build the SO_ORIGINAL_DST addon (REASON); weft up falls back to explicit proxy mode',
  },
  {
    name: 'malloc_trim',
    source: 'native/malloc-trim/malloc_trim.c',
    without:
      'cannot build the malloc_trim addon (REASON); proxies run without returning freed malloc memory to the system',
  },
];

class Unavailable extends Error {}

function fail(reason: string): never {
  throw new Unavailable(reason);
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

function build(spec: AddonSpec): void {
  const source = path.join(repo, spec.source);
  const output = path.join(outDir, `${spec.name}.node`);
  const unavailable = path.join(outDir, `${spec.name}.unavailable`);
  try {
    // Both addons use Linux (SO_ORIGINAL_DST, glibc's allocator); nothing to build elsewhere.
    if (process.platform !== 'linux') fail(`not Linux (${process.platform})`);
    if (!fs.existsSync(source)) fail(`source missing: ${spec.source}`);

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
  } catch (error) {
    if (!(error instanceof Unavailable)) throw error;
    try {
      fs.mkdirSync(outDir, { recursive: true });
      fs.writeFileSync(unavailable, `${error.message}\n`);
      // A stale addon from an earlier build would contradict the reason just written.
      fs.rmSync(output, { force: true });
    } catch {
      // The message below is all a read-only tree can get.
    }
    process.stderr.write(`weft: ${spec.without.replace('REASON', error.message)}\n`);
  }
}

for (const spec of addons) build(spec);
