/** Why a decoded file failed its digest: the inputs' evidence, and which tensors' bytes are wrong. */
import type { Pipeline } from '../codec/pipeline.js';
import type { ByteSource } from '../codec/sources.js';
import type { FilePlan } from '../plan/plan.js';
import { rebuiltText } from '../rebuild/rebuild-input.js';
import { RecordCrcs, type RecordCrcReport } from '../release/record-crcs.js';
import { stateDictTensors, type TensorLayout } from '../release/state-dict.js';
import type { Diagnosis, Digests } from '../types.js';
import { diagnoseFailure, type Finding, type KnownPayload } from '../verify/diagnose.js';
import * as text from '../verify/diagnosis-text.js';
import { checkMetaFiles } from '../verify/meta-checklist.js';
import type { PickleVerdict } from '../verify/pickle-check.js';
import { openInput, openPayload } from './open-input.js';
import type { RunContext } from './run-context.js';

/** The tensors data.pkl names, when it was walked whole; undefined when it is no state dict. */
export function tensorsOf(verdict: PickleVerdict | undefined): TensorLayout[] | undefined {
  const root = verdict?.status === 'safe' && verdict.scan.format === 'zip' ? verdict.scan.walks[0]?.root : undefined;
  if (root === undefined) return undefined;
  try {
    return stateDictTensors(root);
  } catch {
    return undefined;
  }
}

export async function diagnose(
  file: FilePlan,
  pipeline: Pipeline,
  ctx: RunContext,
  seen: { baseDigests?: Digests | undefined; decodedHead?: Buffer | undefined; payload?: KnownPayload | undefined; baseReceivedCorrupt?: boolean; tensorFacts?: Diagnosis[] | undefined },
): Promise<Finding> {
  if (file.payloadRebuild) {
    // Made, not decoded: the only input is the folder it was rebuilt from.
    const label = ctx.plan.expectations?.manifest.label ?? 'the manifest';
    const input = file.payloadRebuild;
    const local = input.kind === 'shard' ? input.folder.local : undefined;
    const originals = input.kind === 'shard' && local !== undefined ? await checkMetaFiles(pipeline, local, input.origin, { signal: ctx.signal }) : [];
    return { cause: 'base', diagnosis: [text.rebuiltNotPublished(rebuiltText(file.name, input), label, input.kind === 'shard' && input.origin.kind === 'meta'), ...originals] };
  }
  ctx.notify({ type: 'file-start', name: file.name, bytes: file.baseSize ?? 0, action: file.action, phase: 'diagnose' });
  return diagnoseFailure(file, {
    pipeline,
    payloadList: ctx.plan.inputDigests.payload,
    baseList: ctx.plan.inputDigests.base,
    baseDigests: seen.baseDigests,
    decodedHead: seen.decodedHead,
    knownPayload: seen.payload,
    baseReceivedCorrupt: seen.baseReceivedCorrupt,
    tensorFacts: seen.tensorFacts,
    evidence: ctx.evidence,
    hash: { signal: ctx.signal, onBytes: (bytes) => ctx.notify({ type: 'progress', name: file.name, bytes }) },
  });
}

/**
 * Whether a conversion checks its records' CRCs as it streams. The decoded zip of a conversion is
 * never on disk, so a failed one is decoded once more for its records' verdicts; that costs nothing
 * until a file fails, where the CRCs inline cost a third of a 1 GiB --gguf decode's main thread
 * here. An input fetched from the network would be fetched again, so there they are checked inline.
 */
export const crcsInline = (file: FilePlan): boolean => (file.hub !== undefined && !file.hub.cached) || (file.baseHub !== undefined && !file.baseHub.cached);

/**
 * The records' CRC-32 verdicts of a converted file that failed its digest, from its inputs decoded
 * once more; undefined where they cannot be read again (the diagnosis then names no tensors).
 */
export async function decodedRecordCrcs(file: FilePlan, pipeline: Pipeline, signal: AbortSignal): Promise<RecordCrcReport | undefined> {
  const crcs = new RecordCrcs();
  let source: ByteSource | undefined;
  let base: ByteSource | undefined;
  try {
    source = await openPayload(file, signal);
    base = file.basePath ? await openInput(file.basePath, file.baseSize, file.baseHub, signal, 0, file.baseRebuild) : undefined;
    await pipeline.run({ source, base, algorithms: [], signal, onChunk: (data) => crcs.feed(data) });
    return crcs.finish();
  } catch (err) {
    if (signal.aborted) throw err;
    return undefined;
  } finally {
    await source?.close();
    await base?.close();
  }
}
