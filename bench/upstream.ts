// The benchmark's upstream: drains the request body, then answers 200 with a fixed 1 KiB body.
// Usage: node bench/upstream.ts PORT
import http from 'node:http';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: node bench/upstream.ts PORT\n');
  process.exit(2);
}

const body = Buffer.alloc(1024, 'x');
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
// The proxies keep pooled connections idle between runs for up to 60 s; closing them sooner would make
// the first request after a pause race the close and fail.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 60_000;
server.requestTimeout = 0;

server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
