#!/usr/bin/env node
/**
 * Installs the GGUF tests' judge, real llama.cpp through node-llama-cpp pinned to 3.21.1 with its
 * prebuilt CPU binaries (inside the npm packages: nothing is built or downloaded besides them),
 * into .judge/ apart from the main install, which it keeps small. Does nothing when it is there.
 * Linux x64 (glibc) only, where those binaries exist; elsewhere the judge's tests say they cannot run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, '.judge');
const VERSION = '3.21.1';
const marker = join(DIR, 'node_modules', 'node-llama-cpp', 'package.json');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`install-judge: no prebuilt llama.cpp for ${process.platform}-${process.arch}; the GGUF judge tests will fail here`);
  process.exit(0);
}
if (!existsSync(marker)) {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(join(DIR, 'package.json'), `${JSON.stringify({ name: 'metharme-xor-judge', private: true }, null, 2)}\n`);
  console.error(`install-judge: installing node-llama-cpp ${VERSION} (prebuilt CPU llama.cpp) into .judge/ ...`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '-E', '--omit=optional', '--ignore-scripts', `node-llama-cpp@${VERSION}`, `@node-llama-cpp/linux-x64@${VERSION}`], {
    cwd: DIR,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
