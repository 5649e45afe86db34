/**
 * The supervisor's control socket: a Unix domain socket in DIR/.weft/ (a directory only its owner can enter),
 * through which `weft restart` asks the running `weft up` to do something and reads its progress back.
 * A socket rather than a signal plus a request file: the answer (progress lines, then success or the reason
 * for failure) comes back on the same connection, the supervisor learns at once when the client goes away,
 * and two clients cannot overwrite each other's request.
 *
 * Protocol: the client writes one JSON line `{"op":"restart","workload":"NAME"}`; the supervisor answers with
 * JSON lines `{"line":"..."}` (progress) and ends with `{"done":true,"ok":true}` or
 * `{"done":true,"ok":false,"error":"..."}`, then closes the connection.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ControlRequest {
  readonly op: 'restart';
  readonly workload: string;
}

export type ControlMessage =
  | { readonly line: string }
  | { readonly done: true; readonly ok: true }
  | { readonly done: true; readonly ok: false; readonly error: string };

/** Runs one request; `progress` sends a line to the client. Resolves with the failure reason, if any. */
export type ControlHandler = (
  req: ControlRequest,
  progress: (line: string) => void,
) => Promise<string | undefined>;

/** Unix socket paths are limited to ~107 bytes: a deep mesh directory gets its socket in the temp dir instead. */
const MAX_SOCKET_PATH = 100;

export function controlSocketPath(weftDir: string): string {
  const inDir = path.join(weftDir, 'control.sock');
  if (inDir.length <= MAX_SOCKET_PATH) return inDir;
  const id = createHash('sha256').update(path.resolve(weftDir)).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `weft-${id}.sock`);
}

function parseRequest(text: string): ControlRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'the request is not JSON';
  }
  const r = v as { op?: unknown; workload?: unknown };
  if (r.op !== 'restart') return `unknown operation ${JSON.stringify(r.op)}`;
  if (typeof r.workload !== 'string' || r.workload === '') return 'restart needs a workload name';
  return { op: 'restart', workload: r.workload };
}

export class ControlServer {
  readonly path: string;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(file: string, server: net.Server) {
    this.path = file;
    this.#server = server;
  }

  /** Listens on `file` (a stale socket file left by a killed supervisor is removed first). */
  static async listen(file: string, handler: ControlHandler): Promise<ControlServer> {
    fs.rmSync(file, { force: true });
    const server = net.createServer();
    const control = new ControlServer(file, server);
    server.on('connection', (s) => control.#serve(s, handler));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(file, 0o600);
    return control;
  }

  #serve(s: net.Socket, handler: ControlHandler): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = '';
    let started = false;
    const send = (m: ControlMessage): void => {
      if (!s.destroyed && s.writable) s.write(JSON.stringify(m) + '\n');
    };
    s.on('data', (c: Buffer) => {
      if (started) return;
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 4096) s.destroy();
        return;
      }
      started = true;
      const req = parseRequest(buf.slice(0, nl));
      const finish = (error: string | undefined): void => {
        send(error === undefined ? { done: true, ok: true } : { done: true, ok: false, error });
        s.end();
      };
      if (typeof req === 'string') return finish(req);
      handler(req, (line) => send({ line })).then(finish, (err: unknown) =>
        finish(err instanceof Error ? err.message : String(err)),
      );
    });
  }

  /** Stops listening; a request still running is answered "weft up is stopping" (its handler sees that too). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const stopping: ControlMessage = { done: true, ok: false, error: 'weft up is stopping' };
    for (const s of this.#sockets) s.end(JSON.stringify(stopping) + '\n');
    const force = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, 1000);
    await closed;
    clearTimeout(force);
    fs.rmSync(this.path, { force: true });
  }
}

/**
 * Sends `req` to the supervisor at `file`, passing each progress line to `onLine`; resolves with undefined on
 * success, else the reason.
 */
export function sendControl(
  file: string,
  req: ControlRequest,
  onLine: (line: string) => void,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    let buf = '';
    let result: string | undefined | null = null;
    s.on('connect', () => s.write(JSON.stringify(req) + '\n'));
    s.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let m: ControlMessage;
        try {
          m = JSON.parse(text) as ControlMessage;
        } catch {
          continue;
        }
        if ('line' in m) onLine(m.line);
        else result = m.ok ? undefined : m.error;
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (result === null)
        result = `cannot reach weft up's control socket ${file}: ${err.code ?? err.message}`;
    });
    s.on('close', () =>
      resolve(result === null ? 'weft up closed the connection before the restart finished' : result),
    );
  });
}
