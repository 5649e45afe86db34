/**
 * Larger HTTP/2 receive windows (and frames) for the ADS server's connections. A state-of-the-world proxy repeats its whole
 * EDS subscription in every ACK — hundreds of kilobytes with thousands of clusters — and with HTTP/2's default
 * 64 KiB windows each ACK needs several window updates, each of which waits for the control plane's event loop:
 * under load an ACK then takes seconds, and the next push waits for it. istiod raises its gRPC windows for the
 * same reason. grpc-js has no server option for this, so the sessions of the http2 servers it creates get new
 * settings as they open; if grpc-js stops exposing those servers, nothing changes but speed (and a test fails).
 */
import type http2 from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/**
 * Per stream and per connection (a proxy has one stream on its connection): an ACK naming ~10,000 clusters fits
 * in one window. Larger windows let a thousand proxies' ACKs pile up in memory at once; smaller ones make each
 * ACK wait for several window updates, each of which waits for the event loop.
 */
export const STREAM_WINDOW_BYTES = 512 * 1024;
export const CONNECTION_WINDOW_BYTES = 1024 * 1024;
/** The largest DATA frame a proxy may send: a large ACK in a few frames instead of dozens of 16 KiB ones. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Applies the windows to every session of `server`'s listeners from now on; false if it could not. */
export function widenReceiveWindows(server: Server): boolean {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return false;
  for (const h of servers.keys() as IterableIterator<http2.Http2Server>) {
    h.on('session', (session: http2.ServerHttp2Session) => {
      try {
        session.settings({ initialWindowSize: STREAM_WINDOW_BYTES, maxFrameSize: MAX_FRAME_BYTES });
        session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
      } catch {
        // The session is already closing.
      }
    });
  }
  return servers.size > 0;
}
