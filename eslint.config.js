// Type-aware linting: floating and misused promises are the bugs that crash a proxy.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/it/test return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': 'off',
    },
  },
  {
    // Layering: the proxy never imports the control plane or its config loader.
    files: ['src/proxy/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/control/**', '**/config/**', '**/cli/**', '**/local/**', '**/dashboard/**'] },
      ],
    },
  },
  {
    files: ['src/core/**/*.ts', 'src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/proxy/**', '**/control/**', '**/config/**', '**/cli/**', '**/identity/**'] },
      ],
    },
  },
  {
    // The config loader (YAML, validation, analyze) sees only the API types and core.
    files: ['src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '**/proxy/**',
            '**/control/**',
            '**/cli/**',
            '**/local/**',
            '**/dashboard/**',
            '**/identity/**',
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Tests may reach across layers (an api test checks the codec against the proxy's normalizer).
      'no-restricted-imports': 'off',
    },
  },
);
