/**
 * One tensor of a decoded folder written into a GGUF (the gguf command): read a block of rows at a
 * time, converted on the conversion workers while the next blocks are read (convert-pool.ts), and
 * written in order. A few blocks are in flight at once, so memory stays flat.
 */
import { BufferPool, convertBlock } from './gguf-route.js';
import { sourceBytes } from './ggml-blocks.js';
import { blockRows, rowsOf, type TensorPlan } from './gguf-tensors.js';

/** Reads bytes [offset, offset + length) of a tensor into buf[0, length). */
export type ReadTensor = (offset: number, buf: Buffer, length: number) => Promise<void>;

/** Blocks read ahead of the one being written. */
const AHEAD = 6;

/** Streams a tensor's GGUF bytes to `write`; the bytes written. */
export async function writeTensor(read: ReadTensor, t: TensorPlan, write: (data: Buffer) => Promise<void>, pool = new BufferPool()): Promise<number> {
  const elem = sourceBytes(t.dtype);
  if (elem === undefined) throw new Error(`no conversion from ${t.dtype}`);
  const { rows, cols } = rowsOf(t.shape);
  const srcRow = cols * elem;
  const block = blockRows(t, srcRow);
  const pending: { out: Promise<Buffer>; recycle: Buffer[] }[] = [];
  let written = 0;
  const writeNext = async () => {
    const { out, recycle } = pending.shift()!;
    const data = await out;
    await write(data);
    written += data.length;
    recycle.forEach((b) => pool.give(b));
  };
  try {
    for (let row = 0; row < rows; row += block) {
      const n = Math.min(block, rows - row);
      const src = pool.take(n * srcRow);
      await read(row * srcRow, src, src.length);
      const { data, recycle, rowsFree } = convertBlock(src, t, t.type, cols, pool);
      if (rowsFree) pool.give(src);
      const out = Promise.resolve(data);
      // Awaited in order below; until then a failure is held, not an unhandled rejection.
      out.catch(() => {});
      pending.push({ out, recycle });
      if (pending.length > AHEAD) await writeNext();
    }
    while (pending.length > 0) await writeNext();
  } finally {
    await Promise.allSettled(pending.map((p) => p.out));
  }
  return written;
}
