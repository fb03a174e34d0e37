import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestBytes, HashWorker } from '../../src/codec/hasher.js';

async function md5Through(worker: HashWorker, memory: SharedArrayBuffer, data: Buffer): Promise<string | undefined> {
  Buffer.from(memory).set(data);
  worker.begin(0, ['md5', 'sha256']);
  await worker.update(0, 0, data.length);
  return (await worker.digest(0)).md5;
}

describe('MD5 where node:crypto has none (OpenSSL in FIPS mode)', () => {
  const data = Buffer.from('metharme-xor md5 fallback test data');
  const expected = createHash('md5').update(data).digest('hex');

  it('the worker computes MD5 with hash-wasm when told to, giving the same digest', async () => {
    const memory = new SharedArrayBuffer(1024);
    const worker = new HashWorker(memory, { wasm: true });
    try {
      expect(await md5Through(worker, memory, data)).toBe(expected);
    } finally {
      await worker.close();
    }
  });

  it('the forced path really loads hash-wasm: pointed at a missing module, MD5 fails', async () => {
    const memory = new SharedArrayBuffer(1024);
    const worker = new HashWorker(memory, { wasm: true, module: '/nonexistent/hash-wasm.js' });
    try {
      await expect(md5Through(worker, memory, data)).rejects.toThrow(/Cannot find module/);
    } finally {
      await worker.close();
    }
  });

  it('digestBytes gives node:crypto\'s digests', async () => {
    expect(await digestBytes('md5', data)).toBe(expected);
    expect(await digestBytes('sha256', data)).toBe(createHash('sha256').update(data).digest('hex'));
  });
});
