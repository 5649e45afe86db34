// The shop's apps are plain JavaScript modules (.mjs, no build step): ESLint's recommended rules with
// Node's globals, instead of the repository's type-aware TypeScript setup, which only covers .ts files.
import js from '@eslint/js';

const nodeGlobals = Object.fromEntries(
  [
    'AbortSignal',
    'Buffer',
    'URL',
    'clearInterval',
    'clearTimeout',
    'console',
    'fetch',
    'performance',
    'process',
    'setInterval',
    'setTimeout',
  ].map((name) => [name, 'readonly']),
);

export default [
  js.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: nodeGlobals },
  },
];
