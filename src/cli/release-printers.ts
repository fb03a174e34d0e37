/** What `models` and `manifest` print: the built-in release data, as a table, JSON or checksum lines. */
import { formatManifest } from '../release/manifest.js';
import { listModels, modelAlgorithms, modelEntries, modelFileCount, primaryEntries, type BuiltinModel } from '../release/models.js';
import type { Streams } from './reporter.js';

export function printModels(streams: Streams, json: boolean): void {
  const rows = listModels().map((m) => ({
    name: m.name,
    kind: m.kind,
    base: m.base ?? null,
    repo: m.repo ?? null,
    algorithms: modelAlgorithms(m),
    files: modelFileCount(m),
    description: m.description,
    sources: m.sources.map((s) => s.label),
  }));
  if (json) {
    streams.out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  for (const r of rows) {
    streams.out.write(
      `${r.name.padEnd(22)} ${r.kind.padEnd(8)} ${r.algorithms.join('+').padEnd(11)} ${String(r.files).padStart(2)} files` +
        `${r.base ? `  base: ${r.base}` : ''}\n`,
    );
    if (r.repo) streams.out.write(`${''.padEnd(23)}hub: ${r.repo}\n`);
    for (const s of r.sources) streams.out.write(`${''.padEnd(23)}digests: ${s}\n`);
  }
}

export function printManifest(streams: Streams, model: BuiltinModel, all: boolean): void {
  streams.out.write(`# ${model.name}: ${model.sources[0]!.label}\n`);
  streams.out.write(formatManifest(primaryEntries(model)));
  if (!all) return;
  for (const source of model.sources.slice(1)) {
    streams.out.write(`# also published (${source.label}):\n`);
    for (const e of modelEntries(model).filter((x) => x.source === source.label)) {
      streams.out.write(`# ${formatManifest([e])}`);
    }
  }
}
