/**
 * Loading Weft's optional Node-API addons (built into build/native/ by scripts/build-native.ts). An
 * addon that is missing is a capability the process runs without, so loading never throws: it says
 * whether the addon is there and, when not, why (the build's recorded reason, else the load error).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonSupport =
  { readonly available: true } | { readonly available: false; readonly reason: string };

export interface LoadedAddon<T> {
  readonly addon: T | undefined;
  readonly support: AddonSupport;
}

// Two levels up from both src/core/ and dist/core/.
const nativeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'native');

/** Loads build/native/NAME.node. */
export function loadNativeAddon<T>(name: string): LoadedAddon<T> {
  const addonPath = path.join(nativeDir, `${name}.node`);
  try {
    const addon = createRequire(import.meta.url)(addonPath) as T;
    return { addon, support: { available: true } };
  } catch (error) {
    // The build's own reason is more useful than "cannot find module" when it chose not to build.
    let reason: string;
    try {
      reason = fs.readFileSync(path.join(nativeDir, `${name}.unavailable`), 'utf8').trim();
    } catch {
      // Only the first line: require's message goes on with a require stack nobody needs in a notice.
      const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      reason = `cannot load ${addonPath}: ${message}`;
    }
    return { addon: undefined, support: { available: false, reason } };
  }
}
