#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=64
// Thin launcher: the compiled CLI lives in dist/ (built by `npm run build`, which `npm ci` runs via prepare).
// A small young generation keeps a sidecar's memory low (see ARCHITECTURE.md, "Memory"); V8 reads heap
// flags only at start-up, hence the shebang.
import '../dist/cli/main.js';
