/** How the page writes numbers: short, with units, and a dash for "no data". */
import type { EdgeStats } from '../types.ts';

export function rate(v: number): string {
  if (v === 0) return '0';
  if (v < 0.1) return v.toFixed(2);
  if (v < 10) return v.toFixed(1);
  return Math.round(v).toString();
}

export function percent(v: number | null): string {
  if (v === null) return '–';
  if (v === 0) return '0%';
  return v < 1 ? `${v.toFixed(2)}%` : `${v.toFixed(1)}%`;
}

export function ms(v: number | null): string {
  if (v === null) return '–';
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(1)} s`;
}

export function bytes(v: number): string {
  if (v < 1024) return `${Math.round(v)} B/s`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB/s`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB/s`;
}

/** How long, from ms: "45 s", "3 min 5 s", "2 h 10 min". */
export function duration(msElapsed: number): string {
  const s = Math.max(0, Math.round(msElapsed / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * An edge's label: rps · error % · p99 (HTTP, gRPC) or conn/s · bytes/s (TCP), marked "mTLS" when mutual
 * TLS was seen. A word rather than a lock emoji: a browser without an emoji font (Debian's headless
 * Chromium) draws the emoji as an empty box.
 */
export function edgeLabel(e: EdgeStats & { protocol: string; mtls: boolean | null }): string {
  const lock = e.mtls === true ? 'mTLS · ' : '';
  if (e.protocol === 'tcp') return `${lock}${rate(e.rps)} conn/s · ${bytes(e.tcpBytesPerSecond)}`;
  return `${lock}${rate(e.rps)} rps · ${percent(e.errorPct)} · p99 ${ms(e.p99Ms)}`;
}
