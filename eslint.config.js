// Lint rules for the TypeScript sources, tests, examples and benchmarks (formatting is Prettier's).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'prebuilds/', 'node_modules/', 'bench/c/', 'native/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'PropertyDefinition[accessibility="private"]',
          message: 'Private state is a #field (the house style), not `private x`.',
        },
      ],
    },
  },
  {
    // Tests declare their results before a try/finally that assigns them and cleans up, then assert.
    files: ['test/**/*.ts'],
    rules: { 'no-useless-assignment': 'off' },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
