/**
 * The Envoy v3 type descriptor, generated at build time by scripts/gen-envoy-descriptor.ts.
 * The file sits in src/api/envoy/ and dist/api/envoy/, so the same relative URL works from both trees.
 */
import fs from 'node:fs';
import protobuf from 'protobufjs';

const descriptorUrl = new URL('./descriptor.gen.json', import.meta.url);

let cached: protobuf.Root | undefined;

/** Loads (once) and returns the Envoy types: the bootstrap, its supported extensions, and the ADS service. */
export function loadEnvoyTypes(): protobuf.Root {
  if (cached) return cached;
  let text: string;
  try {
    text = fs.readFileSync(descriptorUrl, 'utf8');
  } catch (err) {
    throw new Error(
      `Envoy type descriptor missing at ${descriptorUrl.pathname}: run \`npm run build\` to generate it`,
      {
        cause: err,
      },
    );
  }
  const root = protobuf.Root.fromJSON(JSON.parse(text) as protobuf.INamespace);
  root.resolveAll();
  cached = root;
  return root;
}

/** The message type with exactly this full name (no leading dot), or undefined when the descriptor does not have it. */
export function findMessageType(fullName: string): protobuf.Type | undefined {
  // Walk the names one level at a time: protobufjs' lookup() would also find "Bootstrap" by searching nested scopes.
  let found: protobuf.ReflectionObject | null = loadEnvoyTypes();
  for (const segment of fullName.split('.')) {
    found = found instanceof protobuf.Namespace && segment !== '' ? found.get(segment) : null;
    if (!found) return undefined;
  }
  return found instanceof protobuf.Type ? found : undefined;
}

/** The full type name an Any's type URL names: everything after the last '/'. */
export function typeNameOfUrl(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

export const typeUrlPrefix = 'type.googleapis.com/';
