/**
 * The safetensors writer walks a torch zip checkpoint as it streams by, in whatever pieces the
 * pipeline hands it: real torch.save checkpoints (fixtures/make-checkpoints.py), cut into pieces down
 * to a byte, must give the same file as when each arrives whole.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SafetensorsSink } from '../../src/output/safetensors-sink.js';
import { createTemp, partialDir } from '../../src/output/temp-file.js';
import { removeDir, tempDir, TORCH, TORCH_FINE } from '../support/helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
  await mkdir(partialDir(dir), { recursive: true });
});
afterEach(() => removeDir(dir));

/** The safetensors file written from `checkpoint` handed over in pieces of `piece` bytes. */
async function convert(checkpoint: Buffer, piece: number, name: string): Promise<Buffer> {
  const temp = await createTemp(dir, name);
  const sink = new SafetensorsSink(temp, 'pytorch_model.bin');
  for (let at = 0; at < checkpoint.length; at += piece) {
    // The pipeline reuses its buffers: hand over a copy that is scribbled on once written.
    const buf = Buffer.from(checkpoint.subarray(at, at + piece));
    await sink.write(buf, buf.length);
    buf.fill(0xee);
  }
  await sink.finish();
  await temp.close();
  return readFile(temp.tempPath);
}

describe('SafetensorsSink', () => {
  it.each([
    ['a fine-tuned shard', join(TORCH_FINE, 'pytorch_model-00001-of-00003.bin')],
    ['a zip64 checkpoint', join(TORCH, 'dtypes', 'zip64', 'pytorch_model-00001-of-00002.bin')],
  ])('%s in pieces of 1, 7, 97, 4096 bytes gives the same file as whole', async (_, path) => {
    const checkpoint = await readFile(path);
    const whole = await convert(checkpoint, checkpoint.length, 'whole.safetensors');
    expect(whole.readBigUInt64LE(0)).toBeGreaterThan(0n);
    expect(JSON.parse(whole.subarray(8, 8 + Number(whole.readBigUInt64LE(0))).toString()).__metadata__).toEqual({ format: 'pt' });
    for (const piece of [1, 7, 97, 4096]) {
      expect((await convert(checkpoint, piece, `p${piece}.safetensors`)).equals(whole), `pieces of ${piece}`).toBe(true);
    }
  });
});
