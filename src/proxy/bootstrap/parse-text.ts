/** YAML (or JSON, which is YAML) text → a plain JSON-like value, with syntax errors located as file:line:col. */
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../../core/errors.ts';

/** Parses bootstrap text; a syntax error becomes a ConfigError whose message starts with `file:line:col:`. */
export function parseBootstrapText(text: string, file: string): unknown {
  // merge: Envoy's own examples use YAML merge keys (<<: *anchor) in bootstraps.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { merge: true, prettyErrors: false, lineCounter });
  const error = doc.errors[0];
  if (error) {
    const pos = lineCounter.linePos(error.pos[0]);
    const where = `${file}:${pos.line}:${pos.col}`;
    const message =
      error.code === 'MULTIPLE_DOCS'
        ? 'a bootstrap file holds exactly one YAML document'
        : error.message.split('\n')[0];
    throw new ConfigError('', `${where}: ${message}`);
  }
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    return doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError('', `${file}: ${(err as Error).message}`);
  }
}
