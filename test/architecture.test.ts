/**
 * The structure of src/, as a test: data flows one way through the layers below, so no module imports
 * one from a higher layer, no import circle exists, and no source file grows past 350 lines.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/helpers.js';

const SRC = join(ROOT, 'src');
/** Lowest first. A module may import its own layer or lower ones. */
const LAYERS = ['(shared)', 'release', 'codec', 'hub', 'rebuild', 'output', 'plan', 'verify', 'jobs', 'cli', '(entry)'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

function layerOf(file: string): number {
  const rel = relative(SRC, file);
  if (rel === 'index.ts') return LAYERS.indexOf('(entry)');
  const folder = rel.includes('/') ? rel.split('/')[0]! : '(shared)';
  const rank = LAYERS.indexOf(folder);
  if (rank < 0) throw new Error(`${rel}: folder ${folder} has no place in the layer list`);
  return rank;
}

const files = sources(SRC);
const graph = new Map(
  files.map((f) => {
    const text = readFileSync(f, 'utf8');
    // Static imports, and the rooms a module loads only when a run enters them (import('...')).
    const deps = [...text.matchAll(/(?:from |import\()'(\.{1,2}\/[^']+)\.js'/g)].map((m) => resolve(dirname(f), `${m[1]}.ts`));
    return [f, deps] as const;
  }),
);

describe('the structure of src/', () => {
  it('has a layer for every file, and only imports that stay in a layer or go down', () => {
    const upward: string[] = [];
    for (const [file, deps] of graph) {
      for (const dep of deps) {
        if (layerOf(dep) > layerOf(file)) upward.push(`${relative(SRC, file)} -> ${relative(SRC, dep)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import circle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...path.slice(path.indexOf(file)), file].map((p) => relative(SRC, p)).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(circles).toEqual([]);
  });

  it('keeps every source file at 350 lines or fewer', () => {
    const long = files.map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 350);
    expect(long).toEqual([]);
  });

  it('loads the Hub, rebuild, GGUF and safetensors rooms only when a run enters them', () => {
    // What `decode` of local folders loads before its first byte: each module costs about 1 ms here.
    const loaded = new Set<string>();
    const visit = (file: string) => {
      if (loaded.has(file)) return;
      loaded.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^(?:import|export) (?!type )[^;]*?from '(\.{1,2}\/[^']+)\.js'/gm)) visit(resolve(dirname(file), `${m[1]}.ts`));
    };
    visit(join(SRC, 'cli', 'main.ts'));
    visit(join(SRC, 'jobs', 'decode.ts'));
    const names = [...loaded].map((f) => relative(SRC, f));
    expect(names).toContain('plan/plan.ts');
    expect(names).toContain('codec/pipeline.ts');
    const rooms = names.filter((n) => /^(hub\/(client|http-get|connect)|rebuild\/(?!rebuild-input)|output\/(gguf-(?!types)|convert-|safetensors-|torch-zip)|jobs\/(gguf|encode|verify|check-base|rebuild-base))/.test(n));
    expect(rooms).toEqual([]);
    expect(readFileSync(join(SRC, 'cli', 'bars.ts'), 'utf8')).not.toMatch(/^import (?!type )[^;]*from 'cli-progress'/m);
  });

  it('the layer check fails on an upward import (the check itself works)', () => {
    expect(layerOf(join(SRC, 'codec', 'x.ts'))).toBeLessThan(layerOf(join(SRC, 'jobs', 'x.ts')));
    expect(() => layerOf(join(SRC, 'nowhere', 'x.ts'))).toThrow(/no place/);
  });
});
