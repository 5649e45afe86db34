/**
 * The original destination of a connection captured by iptables REDIRECT, through the optional
 * SO_ORIGINAL_DST addon built by scripts/build-native.ts. When the addon is absent (not Linux, no C
 * compiler at install) transparent capture is unavailable and callers fall back to explicit proxying.
 */
import type net from 'node:net';
import { loadNativeAddon } from '../../core/native-addon.ts';
import type { AddonSupport, LoadedAddon } from '../../core/native-addon.ts';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

interface Addon {
  originalDestination(fd: number): OriginalDestination | null;
}

let loaded: LoadedAddon<Addon> | undefined;

function load(): LoadedAddon<Addon> {
  loaded ??= loadNativeAddon<Addon>('original_dst');
  return loaded;
}

/** Whether the addon loaded; when not, why (from the .unavailable file, or the load error), for weft up's message. */
export function originalDstSupport(): AddonSupport {
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
