#!/usr/bin/env node
// Thin shim: the CLI lives in the compiled library so `npx`, `npm link` and the tests run the same code.
import { main } from '../dist/cli/main.js';

main(process.argv).then((code) => {
  process.exitCode = code;
});
