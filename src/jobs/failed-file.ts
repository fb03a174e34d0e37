/** Why a decoded file failed its digest: the inputs' evidence, and which tensors' bytes are wrong. */
import type { Pipeline } from '../codec/pipeline.js';
import type { FilePlan } from '../plan/plan.js';
import { rebuiltText } from '../rebuild/rebuild-plan.js';
import { stateDictTensors, type TensorLayout } from '../release/state-dict.js';
import type { Diagnosis, Digests } from '../types.js';
import { diagnoseFailure, type Finding, type KnownPayload } from '../verify/diagnose.js';
import * as text from '../verify/diagnosis-text.js';
import { checkMetaFiles } from '../verify/meta-checklist.js';
import type { PickleVerdict } from '../verify/pickle-check.js';
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

