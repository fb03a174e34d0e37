#!/usr/bin/env node
/**
 * Part of `npm run build`: writes the K-quant kernel's WebAssembly modules, assembled by
 * src/output/kquant-*-wasm.ts, as files beside the built kquant-simd.js (dist/output/kernels/), so that
 * a conversion worker reads them instead of assembling them (see KQUANT_MODULES for why).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'output');
const { KQUANT_MODULES } = await import(join(dist, 'kquant-simd.js'));
mkdirSync(join(dist, 'kernels'), { recursive: true });
for (const [name, bytes] of Object.entries(KQUANT_MODULES)) writeFileSync(join(dist, 'kernels', `${name}.wasm`), bytes());
