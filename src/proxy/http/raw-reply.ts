/**
 * Replies written straight to an HTTP/1.1 socket that node:http handed over ('upgrade', 'connect'): there
 * is no ServerResponse on these paths, so the status line and headers are formatted here.
 */
import type { Socket } from 'node:net';
import { nodeHttp } from '../../core/node-http.ts';
import type { HcmRuntime } from './connection-manager.ts';

export function headerBlock(status: number, headers: Record<string, string | string[] | undefined>): string {
  let out = `HTTP/1.1 ${status} ${nodeHttp.STATUS_CODES[status] ?? ''}\r\n`;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out += `${k}: ${x}\r\n`;
    else out += `${k}: ${v}\r\n`;
  }
  return out + '\r\n';
}

/** A complete response (plain-text body) and the end of the connection. */
export function rawReply(hcm: HcmRuntime, socket: Socket, status: number, body = ''): void {
  hcm.stats.responseClass(status);
  if (!socket.writable) return void socket.destroy();
  socket.end(
    headerBlock(status, {
      server: hcm.config.serverName,
      connection: 'close',
      'content-length': String(Buffer.byteLength(body)),
      ...(body ? { 'content-type': 'text/plain' } : {}),
    }) + body,
  );
}
