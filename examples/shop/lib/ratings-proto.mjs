/** The shop's gRPC definitions (proto/*.proto), loaded at run time by @grpc/proto-loader: no code generation. */
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

const definition = protoLoader.loadSync(['ratings.proto', 'health.proto'], {
  includeDirs: [PROTO_DIR],
  longs: Number,
  enums: String,
  defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition);

export { grpc };
/** shop.ratings.v1.Ratings: a client constructor, and `.service` for servers. */
export const Ratings = loaded.shop.ratings.v1.Ratings;
/** grpc.health.v1.Health. */
export const Health = loaded.grpc.health.v1.Health;
