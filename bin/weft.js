#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=64 --no-allocation-site-pretenuring
// Thin launcher: the compiled CLI lives in dist/ (built by `npm run build`, which `npm ci` runs via prepare).
// A small young generation keeps a sidecar's memory low, and no pretenuring keeps per-request objects out of
// the old generation (see ARCHITECTURE.md, "Memory"); V8 reads heap flags only at start-up, hence the shebang.
// The control plane holds the whole mesh's configuration (hundreds of MB for thousands of services), so it
// runs in a child Node without those limits.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const UNCAPPED = new Set(['control-plane', 'analyze']);

if (UNCAPPED.has(process.argv[2] ?? '')) {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(signal, () => {
      child.kill(signal);
    });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
} else {
  await import('../dist/cli/main.js');
}
