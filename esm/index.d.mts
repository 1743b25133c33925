// Types of the ESM entry (esm/index.mjs): the CommonJS build's exports, by name and as the
// default export, so ESM importers get ESM types rather than CommonJS ones.
import cjs from '../dist/index.js';

export * from '../dist/index.js';
export default cjs;
