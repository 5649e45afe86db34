/**
 * What the shop's Node services share: the headers every hop must pass on, one log line per request,
 * an HTTP server on 127.0.0.1:$PORT with /healthz, and a clean exit on SIGTERM.
 * Node built-ins only, so the examples run as they are (no build step).
 */
import { createServer } from 'node:http';

/**
 * Headers a service copies from the request it received onto the requests it makes: the trace
 * context (W3C and B3, plus Envoy's request id) so the sidecars' spans join into one trace, and the
 * headers the mesh routes on (end-user, x-canary, x-fault), so routing rules deeper in the call chain see them.
 */
const PROPAGATED = new Set([
  'traceparent',
  'tracestate',
  'x-request-id',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-ot-span-context',
  'end-user',
  'x-canary',
  'x-fault',
]);

/** The propagated subset of a request's headers (node lower-cases header names). */
export function propagatedHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers))
    if (PROPAGATED.has(name) && value !== undefined)
      out[name] = Array.isArray(value) ? value.join(',') : value;
  return out;
}

/** Who this process is, as `weft up` names it (or the service's name when run by hand). */
export function instanceName(fallback) {
  return process.env.WEFT_INSTANCE ?? process.env.WEFT_WORKLOAD ?? fallback;
}

/**
 * The address to listen on: $HOST, which `weft up` sets to 127.0.0.1 in explicit mode (the app shares the
 * machine's network) and to 0.0.0.0 in transparent mode (its own namespace, reached by its sidecar on eth0).
 */
export function listenHost() {
  return process.env.HOST ?? '127.0.0.1';
}

/** The port to listen on: $PORT, which `weft up` sets to the private port behind the inbound sidecar. */
export function listenPort(fallback) {
  const port = Number(process.env.PORT ?? fallback);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT: not a port: ${process.env.PORT}`);
  return port;
}

/** One line per request on stdout, which `weft logs` shows. */
export function logRequest(name, fields) {
  const parts = [new Date().toISOString(), name];
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') parts.push(`${k}=${v}`);
  process.stdout.write(`${parts.join(' ')}\n`);
}

export function sendJson(res, status, body) {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Stops the process on SIGTERM/SIGINT: `stop` finishes what is in flight, then the process exits 0.
 * A second signal, or a stop that hangs, exits at once (the supervisor should never wait on us).
 */
export function exitOnSignal(name, stop) {
  let stopping = false;
  const onSignal = (signal) => {
    if (stopping) process.exit(0);
    stopping = true;
    logRequest(name, { event: 'stopping', signal });
    setTimeout(() => process.exit(0), 5000).unref();
    Promise.resolve()
      .then(stop)
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * An HTTP/1.1 server on 127.0.0.1:$PORT: GET /healthz answers "ok", everything else goes to
 * `handle(req, res)`, which may be async. Each request is logged once, when its response ends.
 */
export function serveHttp(name, defaultPort, handle) {
  const server = createServer((req, res) => {
    const started = performance.now();
    res.on('finish', () => {
      if (req.url === '/healthz') return;
      logRequest(name, {
        method: req.method,
        path: req.url,
        status: res.statusCode,
        ms: (performance.now() - started).toFixed(1),
        'end-user': req.headers['end-user'],
        'x-request-id': req.headers['x-request-id'],
      });
    });
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    Promise.resolve()
      .then(() => handle(req, res))
      .catch((err) => {
        if (!res.headersSent) sendJson(res, 500, { error: String(err?.message ?? err) });
        else res.destroy();
      });
  });
  server.listen(listenPort(defaultPort), listenHost(), () => {
    logRequest(name, { event: 'listening', address: `${listenHost()}:${server.address().port}` });
  });
  exitOnSignal(name, async () => {
    // Idle keep-alive connections would hold close() open; in-flight requests finish first.
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeIdleConnections();
    await closed;
  });
  return server;
}
