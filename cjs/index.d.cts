// Types for require('metharme-xor'): the same API as the ES module build.
export * from '../dist/index.js';
