/** Library entry: the same decode and verify the CLI runs, with typed results and progress events. */
export { decode, defaultJobs } from './jobs/decode.js';
export type { BaseCheck, DecodeEvent, DecodeOptions, DecodeReport, FilePhase, FileResult } from './jobs/decode.js';
export { verify } from './jobs/verify.js';
export type { VerifyEvent, VerifyFileResult, VerifyOptions, VerifyReport } from './jobs/verify.js';
export type { FileVerdict } from './jobs/results.js';
export { parseManifest, formatManifest, algorithmForDigest } from './release/manifest.js';
export type { Manifest, ManifestEntry } from './release/manifest.js';
export type { Algorithm, Diagnosis, DiagnosisCode, Digests, ExpectedDigest, FileStatus } from './types.js';
export { listModels, findModel, modelEntries, detectModelFromPaths } from './release/models.js';
export type { BuiltinModel, DigestSource } from './release/models.js';
export { planDecode } from './plan/plan.js';
export type { DecodePlan, FilePlan, FileAction } from './plan/plan.js';
export { xorInto } from './codec/xor.js';
export { ExitCode, MetharmeXorError, InputError, WriteError, InterruptedError } from './errors.js';
export { checkBase } from './jobs/check-base.js';
export type { CheckBaseOptions } from './jobs/check-base.js';
export { encode } from './jobs/encode.js';
export type { EncodeOptions, EncodeReport, EncodedFile, EncodeEvent } from './jobs/encode.js';
