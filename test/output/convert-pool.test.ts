/**
 * The conversion workers (issue 21, item 7): rows converted on a worker thread, in shared memory,
 * are the bytes this thread's converters make (which the quantizer vectors hold to llama.cpp's
 * reference), for every type and source dtype, with many jobs in flight at once; and the gguf
 * command's tensor writer, which reads ahead while the workers convert, writes each tensor's bytes
 * in order, q/k rows reverse-permuted.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConvertPool, convertRowsAsync } from '../../src/output/convert-pool.js';
import { GGML_TYPE, type GgmlType } from '../../src/output/gguf-format.js';
import { f32ToBf16, f32ToF16 } from '../../src/output/gguf-numbers.js';
import { BufferPool } from '../../src/output/gguf-route.js';
import { convertRows, rowBytes, unpermuteHead } from '../../src/output/gguf-tensors.js';
import { writeTensor } from '../../src/output/tensor-writer.js';
import { ROOT } from '../support/helpers.js';

const COLS = 512;
const ROWS = 64;

/** Weights-like values (a spread of magnitudes, both signs, some exact zeros) as `dtype` bytes in shared memory. */
function rows(dtype: 'F16' | 'BF16' | 'F32', rowCount = ROWS, seed = randomBytes(4 * COLS * rowCount)): Buffer {
  const n = COLS * rowCount;
  const size = dtype === 'F32' ? 4 : 2;
  const out = Buffer.from(new SharedArrayBuffer(n * size));
  for (let i = 0; i < n; i++) {
    const r = seed.readUInt32LE(i * 4);
    const x = r % 97 === 0 ? 0 : ((r & 1 ? -1 : 1) * ((r >>> 1) % 100000)) / 100000 / 2 ** ((r >>> 20) % 8);
    if (dtype === 'F32') out.writeFloatLE(x, i * 4);
    else out.writeUInt16LE(dtype === 'F16' ? f32ToF16(x) : f32ToBf16(x), i * 2);
  }
  return out;
}

const shared = (bytes: number) => Buffer.from(new SharedArrayBuffer(bytes));

/** Runs `script` as a module in a process of its own, which must exit by itself (0) within 20 s; its output. */
function runScript(name: string, script: string): string {
  const file = join(tmpdir(), `convert-pool-${name}-${process.pid}.mjs`);
  writeFileSync(file, script);
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
  rmSync(file, { force: true });
  expect(run.error).toBeUndefined();
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.trim();
}
const TYPES: [string, GgmlType][] = [
  ['Q8_0', GGML_TYPE.Q8_0],
  ['Q4_K', GGML_TYPE.Q4_K],
  ['Q6_K', GGML_TYPE.Q6_K],
  ['F16', GGML_TYPE.F16],
  ['BF16', GGML_TYPE.BF16],
  ['F32', GGML_TYPE.F32],
];

describe('conversion workers', () => {
  it('run beside this thread (the compiled worker is there: npm test builds first)', () => {
    expect(ConvertPool.get(2)).toBeInstanceOf(ConvertPool);
  });

  for (const dtype of ['BF16', 'F16', 'F32'] as const) {
    it(`${dtype} rows: every type converted on a worker is the bytes this thread makes, twelve jobs in flight`, async () => {
      const pool = ConvertPool.get(2)!;
      const jobs = TYPES.flatMap(([name, type]) =>
        [0, 1].map(() => {
          const src = rows(dtype);
          const into = shared(rowBytes(type, COLS) * ROWS);
          return { name, type, src, into, done: pool.run(src, dtype, type, COLS, into) };
        }),
      );
      for (const job of jobs) {
        await job.done;
        const want = convertRows(Buffer.from(job.src), dtype, job.type, COLS, Buffer.alloc(job.into.length));
        expect(job.into.equals(want), `${dtype} -> ${job.name}`).toBe(true);
      }
    });
  }

  it('an idle pool does not keep the process alive (a conversion that is done lets it exit)', () => {
    const pool = pathToFileURL(join(ROOT, 'dist', 'output', 'convert-pool.js')).href;
    const script = `const { convertRowsAsync } = await import(${JSON.stringify(pool)});
      const src = Buffer.from(new SharedArrayBuffer(1 << 16));
      const out = await convertRowsAsync(src, 'BF16', 8, 512, Buffer.from(new SharedArrayBuffer(34816)));
      console.log(out.length);`;
    expect(runScript('exit', script)).toBe('34816');
  });

  it('warmed threads (their kernels made before the first block) neither keep the process alive nor change a conversion', () => {
    const pool = pathToFileURL(join(ROOT, 'dist', 'output', 'convert-pool.js')).href;
    const tensors = pathToFileURL(join(ROOT, 'dist', 'output', 'gguf-tensors.js')).href;
    const script = `const { convertRowsAsync, warmConversions } = await import(${JSON.stringify(pool)});
      const { convertRows } = await import(${JSON.stringify(tensors)});
      warmConversions(12);
      const src = Buffer.from(new SharedArrayBuffer(1 << 17));
      for (let i = 0; i < src.length / 2; i++) src.writeUInt16LE((i * 2654435761) & 0x3bff, i * 2);
      const out = await convertRowsAsync(src, 'F16', 12, 4096, Buffer.from(new SharedArrayBuffer(36864)));
      console.log(out.equals(convertRows(Buffer.from(src), 'F16', 12, 4096)));`;
    expect(runScript('warm', script)).toBe('true');
  });

  it('rows outside shared memory, or few, are converted here, to the same bytes', async () => {
    const src = rows('BF16');
    const want = convertRows(src, 'BF16', GGML_TYPE.Q8_0, COLS, shared(rowBytes(GGML_TYPE.Q8_0, COLS) * ROWS));
    const plain = await convertRowsAsync(Buffer.from(src), 'BF16', GGML_TYPE.Q8_0, COLS, Buffer.alloc(want.length));
    expect(plain.equals(want)).toBe(true);
    const few = rows('BF16', 1);
    const oneRow = await convertRowsAsync(few, 'BF16', GGML_TYPE.Q8_0, COLS, shared(rowBytes(GGML_TYPE.Q8_0, COLS)));
    expect(oneRow.equals(convertRows(few, 'BF16', GGML_TYPE.Q8_0, COLS))).toBe(true);
  });

  it("the gguf command's tensor writer: blocks read ahead and converted on the workers, written in order, q/k rows reverse-permuted", async () => {
    const head = 64;
    const rowCount = 8 * head;
    const data = rows('BF16', rowCount);
    const srcRow = COLS * 2;
    const read = async (offset: number, buf: Buffer, length: number) => {
      // Reads finish out of order, as the file system may return them.
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      data.copy(buf, 0, offset, offset + length);
    };
    for (const [name, type] of [['Q4_K', GGML_TYPE.Q4_K] as const, ['BF16', GGML_TYPE.BF16] as const]) {
      const parts: Buffer[] = [];
      const written = await writeTensor(read, { dtype: 'BF16', shape: [rowCount, COLS], type, permuteHead: head }, async (b) => void parts.push(Buffer.from(b)), new BufferPool());
      const want: Buffer[] = [];
      for (let h = 0; h < rowCount / head; h++) {
        const block = Buffer.from(data.subarray(h * head * srcRow, (h + 1) * head * srcRow));
        want.push(Buffer.from(convertRows(unpermuteHead(block, head, srcRow), 'BF16', type, COLS)));
      }
      expect(written, name).toBe(rowBytes(type, COLS) * rowCount);
      expect(Buffer.concat(parts).equals(Buffer.concat(want)), name).toBe(true);
    }
  });
});
