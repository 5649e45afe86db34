/**
 * The shop's ratings service, over gRPC (proto/ratings.proto): shop.ratings.v1.Ratings/GetRating
 * returns the average stars of a product. It also answers grpc.health.v1.Health/Check, the gRPC
 * form of a health check (a gRPC port cannot answer a plain HTTP/1.1 GET /healthz).
 */
import { exitOnSignal, instanceName, listenHost, listenPort, logRequest } from '../lib/app.mjs';
import { grpc, Health, Ratings } from '../lib/ratings-proto.mjs';

const NAME = instanceName('ratings');

const RATINGS = {
  1: { stars: 4.2, votes: 118 },
  2: { stars: 3.6, votes: 41 },
  3: { stars: 4.8, votes: 7 },
  4: { stars: 2.9, votes: 15 },
};

function first(metadata, key) {
  const v = metadata.get(key)[0];
  return v === undefined ? undefined : String(v);
}

function getRating(call, callback) {
  const started = performance.now();
  const id = call.request.productId;
  const found = RATINGS[id];
  const code = found ? grpc.status.OK : grpc.status.NOT_FOUND;
  logRequest(NAME, {
    rpc: 'GetRating',
    product: id,
    status: grpc.status[code],
    ms: (performance.now() - started).toFixed(1),
    'end-user': first(call.metadata, 'end-user'),
    'x-request-id': first(call.metadata, 'x-request-id'),
  });
  if (!found) return callback({ code, details: `no product ${id}` });
  return callback(null, { productId: id, ...found });
}

const server = new grpc.Server();
server.addService(Ratings.service, { getRating });
server.addService(Health.service, {
  check: (call, callback) => {
    const known = call.request.service === '' || call.request.service === 'shop.ratings.v1.Ratings';
    callback(null, { status: known ? 'SERVING' : 'SERVICE_UNKNOWN' });
  },
});

server.bindAsync(
  `${listenHost()}:${listenPort(50051)}`,
  grpc.ServerCredentials.createInsecure(),
  (err, port) => {
    if (err) {
      process.stderr.write(`${NAME}: cannot listen: ${err.message}\n`);
      process.exit(1);
    }
    logRequest(NAME, { event: 'listening', address: `${listenHost()}:${port}` });
  },
);

exitOnSignal(NAME, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
