// The lint gate (`npm run lint`; CI runs it through `npm run check:style`). Layout is Prettier's
// job (.prettierrc), not ESLint's: no rule here is about spacing or line breaks.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The JS rules that apply to the library as well: the two rules below the recommended set were
// chosen because they catch mistakes, not taste.
const shared = {
  eqeqeq: ['error', 'smart'],
  // `let x;` declared above the closures that use it and assigned once below them (a pacer whose
  // callback writes through it, a channel pair that reads each other) reads best as it is.
  'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'build-*/', 'prebuilds/', 'bench/c/build/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: globals.node },
    rules: shared,
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' } },

  // The scripts, tests, benchmarks and examples: the recommended set, lighter than the library's
  // (no types to check them against).
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
  ...tseslint.configs.recommendedTypeChecked.map((config) => ({ ...config, files: ['lib/**/*.ts'] })),
  {
    files: ['lib/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A type-only import says the module is not loaded at run time: the import graph that runs
      // is the one the code shows (lib/ keeps value imports free of cycles).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // The default hooks of Store take the arguments their subclasses use and ignore them.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // `catch (error) { return Promise.reject(error); }` turns a synchronous validation throw
      // (always an OtrError, typed `unknown` by the catch) into the promise the caller awaits.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
);
