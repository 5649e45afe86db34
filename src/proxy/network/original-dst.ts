/**
 * The original destination of a connection captured by iptables REDIRECT, through the optional
 * SO_ORIGINAL_DST addon built by scripts/build-native.ts. When the addon is absent (not Linux, no C
 * compiler at install) transparent capture is unavailable and callers fall back to explicit proxying.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

interface Addon {
  originalDestination(fd: number): OriginalDestination | null;
}

type Support = { readonly available: true } | { readonly available: false; readonly reason: string };

// Three levels up from both src/proxy/network/ and dist/proxy/network/.
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const addonPath = path.join(packageRoot, 'build', 'native', 'original_dst.node');
const unavailablePath = path.join(packageRoot, 'build', 'native', 'original_dst.unavailable');

let loaded: { readonly addon: Addon | undefined; readonly support: Support } | undefined;

function load(): { readonly addon: Addon | undefined; readonly support: Support } {
  if (loaded !== undefined) return loaded;
  try {
    const addon = createRequire(import.meta.url)(addonPath) as Addon;
    loaded = { addon, support: { available: true } };
  } catch (error) {
    // The build's own reason is more useful than "cannot find module" when it chose not to build.
    let reason: string;
    try {
      reason = fs.readFileSync(unavailablePath, 'utf8').trim();
    } catch {
      // Only the first line: require's message goes on with a require stack nobody needs in weft up's notice.
      const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      reason = `cannot load ${addonPath}: ${message}`;
    }
    loaded = { addon: undefined, support: { available: false, reason } };
  }
  return loaded;
}

/** Whether the addon loaded; when not, why (from the .unavailable file, or the load error), for weft up's message. */
export function originalDstSupport(): Support {
  return load().support;
}

/** Node reports a v4-mapped local address for IPv4 peers of a dual-stack listener. */
function unmapped(address: string | undefined): string | undefined {
  return address?.toLowerCase().startsWith('::ffff:') === true && address.includes('.')
    ? address.slice(7)
    : address;
}

/** The original destination of an accepted socket, or undefined when it was not redirected (or the addon is unavailable). */
export function originalDestination(socket: net.Socket): OriginalDestination | undefined {
  const { addon } = load();
  if (addon === undefined) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  let original: OriginalDestination | null;
  try {
    original = addon.originalDestination(fd);
  } catch {
    // A closed or non-TCP socket is a per-connection oddity, not a reason to fail the connection path.
    return undefined;
  }
  if (original === null) return undefined;
  // Once NAT is active conntrack tracks every connection, and for one that was never rewritten the
  // kernel answers with the socket's own local address rather than ENOENT.
  if (original.port === socket.localPort && original.address === unmapped(socket.localAddress))
    return undefined;
  return original;
}
