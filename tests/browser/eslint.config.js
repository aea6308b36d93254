// Lint for the console (browser ES modules) and these tests (Node). `npm run lint` runs ESLint
// from the repository's root with this file, so the paths below are from there.
import js from '@eslint/js';
import globals from 'globals';

const rules = {
  'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none' }],
  eqeqeq: ['error', 'smart'],
};

export default [
  { ignores: ['**/node_modules/**', 'target/**'] },
  js.configs.recommended,
  {
    files: ['src/web/assets/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.browser } },
    rules: { ...rules, 'no-restricted-properties': ['error', { object: 'document', property: 'write' }] },
  },
  {
    files: ['tests/browser/**/*.js', 'tests/browser/**/*.mjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    rules,
  },
  {
    // console.mjs runs some functions in the page: those see the browser's globals.
    files: ['tests/browser/console.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser, axe: 'readonly' } },
  },
];
