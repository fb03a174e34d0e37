/**
 * The thread side of convert-pool.ts: converts rows held in shared memory into shared memory, one
 * job at a time, and says which job is done (or why it failed).
 */
import { parentPort } from 'node:worker_threads';
import type { ConvertJob } from './convert-pool.js';
import type { GgmlType } from './gguf-format.js';
import { convertRows, warmKernels } from './gguf-tensors.js';

parentPort!.on('message', (job: ConvertJob | { warm: GgmlType }) => {
  if ('warm' in job) {
    warmKernels(job.warm);
    return;
  }
  try {
    const src = Buffer.from(job.src, job.srcOffset, job.srcLength);
    const into = Buffer.from(job.dst, job.dstOffset, job.dstLength);
    convertRows(src, job.dtype, job.type, job.cols, into);
    parentPort!.postMessage({ id: job.id });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
