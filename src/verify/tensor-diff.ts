/**
 * Which tensors of a decoded torch zip are wrong, from the records whose CRC-32 fails
 * (release/record-crcs.ts, fed as a conversion streams or from a failed file before it is
 * discarded), and what the pattern says: one storage points at a damaged
 * file, nearly all at a damaged or foreign one. A CRC of XORed bytes is the XOR of their CRCs, so
 * a base that is a whole, consistent file with other bytes (another q/k permutation, another model)
 * passes every record's check: then the records say that no input was damaged, which is the
 * finding. It explains a failed digest; it never decides one.
 */
import { open } from 'node:fs/promises';
import { throwIfInterrupted } from '../errors.js';
import { RecordCrcs, type RecordCrcReport } from '../release/record-crcs.js';
import type { TensorLayout } from '../release/state-dict.js';
import type { Diagnosis } from '../types.js';

/** Names listed one by one; the rest are counted. */
const NAMED = 6;

const isQk = (name: string) => /\.self_attn\.[qk]_proj\.weight$/.test(name);

/** The tensor names each record holds (several when they share a storage), or the record's own name. */
function namesOf(record: string, tensors: readonly TensorLayout[] | undefined): string[] {
  const key = /\/data\/([^/]+)$/.exec(record)?.[1];
  const held = key === undefined ? [] : (tensors ?? []).filter((t) => t.storageKey === key).map((t) => t.name);
  return held.length > 0 ? held : [record.slice(record.indexOf('/') + 1)];
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, NAMED).map((n) => `${n}: bytes differ`).join('; ');
  return names.length > NAMED ? `${shown}; and ${names.length - NAMED} more` : shown;
}

const READ_BYTES = 4 << 20;

/** The records' CRC-32 verdicts of a decoded file on disk (read once more, for a failed file only). */
export async function recordCrcsOf(path: string, signal?: AbortSignal): Promise<RecordCrcReport | undefined> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const crcs = new RecordCrcs();
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      throwIfInterrupted(signal);
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      crcs.feed(buf.subarray(0, bytesRead));
      if (crcs.done) break;
    }
    return crcs.finish();
  } finally {
    await handle.close();
  }
}

export function tensorDiff(name: string, report: RecordCrcReport, tensors: readonly TensorLayout[] | undefined): Diagnosis[] {
  const data = report.records.filter((r) => /\/data\/[^/]+$/.test(r.name));
  const bad = report.records.filter((r) => !r.ok);
  const lines: Diagnosis[] = [];
  const say = (message: string) => lines.push({ code: 'tensors-differ', message: `${name}: ${message}` });
  if (report.records.length === 0) return [];
  const wrongNames = bad.flatMap((r) => namesOf(r.name, tensors));
  const badData = bad.filter((r) => data.includes(r));
  if (bad.length === 0) {
    say(report.broken
      ? `the records up to byte ${report.records.at(-1)!.at + report.records.at(-1)!.size} hold their CRC-32, then ${report.broken}: the file's layout differs from there`
      : `every record holds its CRC-32 (${report.records.length} checked), so neither input was damaged in transit or on disk: the base is a whole file of the same layout with other bytes (another conversion, such as another q/k permutation, or another model), or the XOR file was made against one`);
    return lines;
  }
  say(listed(wrongNames));
  if (badData.length > 0 && wrongNames.every(isQk)) {
    say(`only q_proj/k_proj weights differ (${badData.length} of ${data.length} storages): the base's q/k layout is not the one the release was made against (a conversion with another rotary permutation); use the 2023 conversion, or Meta's files, from which the base is rebuilt`);
  } else if (data.length > 2 && badData.length >= 0.9 * data.length) {
    say(`${badData.length} of ${data.length} storages fail their CRC-32: an input was rewritten throughout (bytes shifted, a text-mode copy), not just damaged in one place`);
  } else if (data.length > 2 && bad.length === 1) {
    const r = bad[0]!;
    say(`only one storage differs (bytes ${r.at} to ${r.at + r.size}): a damaged file, the XOR file or the base at that place`);
  }
  if (report.broken) say(`then ${report.broken}: the file's layout differs from there`);
  return lines;
}
