/** Reads an Envoy v3 bootstrap file (YAML or JSON; JSON is YAML) into a validated BootstrapConfig. */
import fs from 'node:fs/promises';
import { ConfigError } from '../../core/errors.ts';
import { compileBootstrap } from './compile.ts';
import { parseBootstrapText } from './parse-text.ts';
import type { BootstrapConfig } from './types.ts';

export { compileBootstrap };

export async function loadBootstrap(file: string): Promise<BootstrapConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read bootstrap file ${file}: ${(err as Error).message}`);
  }
  return compileBootstrap(parseBootstrapText(text, file), file);
}
