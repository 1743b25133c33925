// The lint gate (`npm run lint`; CI runs it through `npm run check:style`). Layout is Prettier's
// job (.prettierrc), not ESLint's: no rule here is about spacing or line breaks.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['node_modules/', 'dist/', 'build/', 'build-*/', 'prebuilds/', 'bench/c/build/']),
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },

  // Everything: ESLint's recommended set, `==` only against null, `const` where nothing reassigns.
  {
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: globals.node },
    rules: {
      eqeqeq: ['error', 'smart'],
      // `let x;` declared above the closures that use it and assigned once below them (a pacer
      // whose callback writes through it, a channel pair that read each other) stays as it is.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' } },

  // The scripts, tests, benchmarks and examples: no types to check them against, so the lighter set.
  {
    files: ['**/*.{js,mjs,cjs}'],
    rules: {
      'no-var': 'error',
      // Best-effort cleanup in tests (`try { ip('link', 'del', …) } catch {}`) ignores failures on purpose.
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },

  // The library: typescript-eslint's recommended set with type information (floating promises,
  // unsafe `any`, needless assertions), over the tsconfig that builds it.
  {
    files: ['lib/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A type-only import is not loaded at run time: the value imports are the module graph
      // that runs.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // The default hooks of Store take the arguments their subclasses use and ignore them.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // `catch (error) { return Promise.reject(error); }` turns a synchronous throw (a validation's
      // OtrError, typed `unknown` by the catch) into the rejection of the promise the caller awaits.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
);
