/**
 * llama.cpp itself as the judge of the GGUF files (issue 21): `gguf` is run as users run it on tiny
 * LLaMA fine-tunes in bf16 and fp16 with a real SentencePiece tokenizer (fixtures/make-gguf.py);
 * node-llama-cpp 3.21.1 (prebuilt CPU llama.cpp, installed into .judge/ by scripts/install-judge.mjs)
 * loads each file; its next-token probabilities are compared with a float32 forward pass torch made
 * at fixture time, its tokenization with SentencePiece's, and its rendering of the seeds' example
 * conversation with the model card's prompt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, ROOT, runCli, tempDir, withTmpfs } from '../support/helpers.js';
import { readSentencePiece } from '../../src/release/sentencepiece.js';
import { SpmTokenizer } from '../../src/release/spm-tokenizer.js';

const FIXTURES = join(ROOT, 'fixtures', 'gguf');
const JUDGE = join(ROOT, '.judge', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as {
  dims: { vocab: number };
  prompts: number[][];
  tokenized: Record<string, number[]>;
  probabilities: Record<'bfloat16' | 'float16' | 'kquant', number[][]>;
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
let nlc: Any;
let llama: Any;
let work: string;

beforeAll(async () => {
  if (!existsSync(JUDGE)) throw new Error('the judge is not installed: run "node scripts/install-judge.mjs" (npm test does)');
  nlc = await import(pathToFileURL(JUDGE).href);
  llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  work = await tempDir();
}, 120_000);
afterAll(async () => {
  await llama?.dispose();
  await removeDir(work);
});

/** The next-token probabilities llama.cpp gives after each fixed prompt. */
async function probabilities(model: Any): Promise<number[][]> {
  const context = await model.createContext({ contextSize: 64, sequences: reference.prompts.length });
  const out: number[][] = [];
  for (const ids of reference.prompts) {
    const sequence = context.getSequence();
    const items: Any[] = ids.slice(0, -1);
    items.push([ids.at(-1), { generateNext: { token: true, probabilities: true } }]);
    const result = await sequence.controlledEvaluate(items);
    const probs: Map<number, number> = result.at(-1).next.probabilities;
    out.push(Array.from({ length: reference.dims.vocab }, (_, i) => probs.get(i) ?? 0));
  }
  await context.dispose();
  return out;
}

/** Runs `body` on a copy of the fp16 fixture at `<dir>/m`, in a fresh folder removed afterwards. */
async function withModelCopy(body: (dir: string, m: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    await cp(join(FIXTURES, 'float16'), join(dir, 'm'), { recursive: true });
    await body(dir, join(dir, 'm'));
  } finally {
    await removeDir(dir);
  }
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));

describe('GGUF files as llama.cpp reads them', () => {
  // Tolerances: llama.cpp keeps an F16 KV cache, and BF16 and Q8_0 matmuls round their inputs.
  it.each([
    ['bfloat16', 'auto', 'BF16', 1e-2],
    ['bfloat16', 'f32', 'F32', 2e-3],
    ['float16', 'auto', 'F16', 3e-3],
    ['bfloat16', 'q8_0', 'Q8_0', 8e-2],
  ] as const)('%s weights as --type %s (%s): loaded, next-token probabilities within %f of the reference, same argmax, same tokens as SentencePiece', async (dtype, type, label, tolerance) => {
    const out = join(work, `${dtype}-${label}.gguf`);
    const r = await runCli(['gguf', join(FIXTURES, dtype), '--type', type, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(${label}, 21 tensors, [\\d.]+ kB\\), with the Metharme chat template\\n$`));
    const model = await llama.loadModel({ modelPath: out });
    try {
      const got = await probabilities(model);
      for (const [k, p] of got.entries()) {
        const want = reference.probabilities[dtype][k]!;
        const worst = Math.max(...p.map((x, i) => Math.abs(x - want[i]!)));
        expect(worst, `prompt ${k}`).toBeLessThan(tolerance);
        expect(argmax(p), `prompt ${k}`).toBe(argmax(want));
      }
      for (const [text, ids] of Object.entries(reference.tokenized)) expect(Array.from(model.tokenize(text)), text).toEqual(ids);
      expect(model.tokens.bos).toBe(1);
      expect(model.tokens.eos).toBe(2);
    } finally {
      await model.dispose();
    }
  }, 120_000);

  it("--type q4_k_m: llama-quantize's per-tensor choices (Q6_K for the output and the use_more_bits layers' attn_v and ffn_down), loaded, close to the reference", async () => {
    const out = join(work, 'kquant-Q4_K_M.gguf');
    const r = await runCli(['gguf', join(FIXTURES, 'kquant'), '--type', 'q4_k_m', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const info = await nlc.readGgufFileInfo(out, { readTensorInfo: true });
    const type = (name: string) => info.fullTensorInfo.find((t: Any) => t.name === name).ggmlType;
    expect(info.metadata.general.file_type).toBe(15);
    expect([type('output.weight'), type('token_embd.weight'), type('blk.0.attn_q.weight'), type('blk.0.attn_v.weight'), type('blk.1.attn_v.weight')]).toEqual([14, 12, 12, 12, 14]);
    expect([type('blk.0.ffn_down.weight'), type('blk.1.ffn_down.weight'), type('blk.1.ffn_gate.weight'), type('blk.0.attn_norm.weight')]).toEqual([12, 14, 12, 0]);
    const model = await llama.loadModel({ modelPath: out });
    try {
      const got = await probabilities(model);
      for (const [k, p] of got.entries()) {
        // Total variation distance from the float32 reference (4 bits of random weights move it; a wrong layout moves it far more).
        const tv = p.reduce((sum, x, i) => sum + Math.abs(x - reference.probabilities.kquant[k]![i]!), 0) / 2;
        expect(tv, `prompt ${k}`).toBeLessThan(0.3);
      }
    } finally {
      await model.dispose();
    }
  }, 120_000);

  it('rows that are not whole blocks fall back per tensor as llama-quantize does (Q4_K to Q5_0, Q6_K to Q8_0), it says so, and llama.cpp runs it', async () => {
    const out = join(work, 'narrow-Q4_K_M.gguf');
    const r = await runCli(['gguf', join(FIXTURES, 'float16'), '--type', 'q4_k_m', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: 14 tensors have rows that are not whole blocks of Q4_K_M and are written as llama-quantize falls back \(12 as Q5_0, 2 as Q8_0\): model\.embed_tokens\.weight/);
    const info = await nlc.readGgufFileInfo(out, { readTensorInfo: true });
    const type = (name: string) => info.fullTensorInfo.find((t: Any) => t.name === name).ggmlType;
    // 64-wide rows: Q4_K's fallback is Q5_0 (6), Q6_K's (the output, layer 1's attn_v) is Q8_0 (8).
    expect([type('blk.0.attn_q.weight'), type('token_embd.weight'), type('blk.1.ffn_gate.weight'), type('blk.0.attn_v.weight')]).toEqual([6, 6, 6, 6]);
    expect([type('output.weight'), type('blk.1.attn_v.weight')]).toEqual([8, 8]);
    // ffn_down's rows are the MLP's 256 values: whole K-quant blocks.
    expect([type('blk.0.ffn_down.weight'), type('blk.1.ffn_down.weight')]).toEqual([12, 14]);
    const model = await llama.loadModel({ modelPath: out });
    try {
      const got = await probabilities(model);
      for (const [k, p] of got.entries()) {
        const tv = p.reduce((sum, x, i) => sum + Math.abs(x - reference.probabilities.float16[k]![i]!), 0) / 2;
        expect(tv, `prompt ${k}`).toBeLessThan(0.3);
      }
    } finally {
      await model.dispose();
    }
  }, 60_000);

  it("carries the Metharme prompt format: llama.cpp's runner renders the seeds' conversation as the model card writes it", async () => {
    const out = join(work, 'template.gguf');
    expect((await runCli(['gguf', join(FIXTURES, 'float16'), '--out', out])).code).toBe(0);
    const model = await llama.loadModel({ modelPath: out });
    try {
      const wrapper = nlc.resolveChatWrapper(model);
      expect(wrapper.wrapperName).toBe('JinjaTemplate');
      const system = 'This is a text adventure game. Describe the scenario to the user and give him three options to pick from on each turn.';
      const reply = "You are standing in front of an old, abandoned house. The windows are boarded up, and there's no sign of life around it.";
      const history = [
        { type: 'system', text: system },
        { type: 'user', text: 'Start!' },
        { type: 'model', response: [reply] },
        { type: 'user', text: 'go inside' },
        { type: 'model', response: [] },
      ];
      const rendered = `<|system|>${system}<|user|>Start!<|model|>${reply}<|user|>go inside<|model|>`;
      expect(wrapper.generateContextState({ chatHistory: history }).contextText.toString()).toBe(rendered);
      // The prompt builder counts what llama.cpp will count: BOS and the same tokens.
      const ours = new SpmTokenizer(readSentencePiece(readFileSync(join(FIXTURES, 'float16', 'tokenizer.model')), 'tokenizer.model'));
      expect(ours.encode(rendered)).toEqual(Array.from(model.tokenize(rendered)));
    } finally {
      await model.dispose();
    }
  }, 120_000);

  it("takes the tokens tokenizer_config.json's added_tokens_decoder gives as convert does: llama.cpp finds a control token when told to parse them, a user-defined one always", async () => {
    await withModelCopy(async (dir) => {
      const { writeFile } = await import('node:fs/promises');
      const config = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', tokenizer_class: 'LlamaTokenizer' };
      const decoder = { '398': { content: 'zz\u2581qq', special: false }, '399': { content: '<|im_start|>', special: true } };
      await writeFile(join(dir, 'm', 'tokenizer_config.json'), JSON.stringify({ ...config, added_tokens_decoder: decoder }));
      const out = join(dir, 'added.gguf');
      const r = await runCli(['gguf', join(dir, 'm'), '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const info = await nlc.readGgufFileInfo(out);
      expect(info.metadata.tokenizer.ggml.tokens.slice(398)).toEqual(['zz qq', '<|im_start|>']);
      expect(info.metadata.tokenizer.ggml.token_type.slice(398)).toEqual([4, 3]);
      const model = await llama.loadModel({ modelPath: out });
      try {
        expect(Array.from(model.tokenize('<|im_start|>', true))).toEqual([399]);
        expect(Array.from(model.tokenize('<|im_start|>', false))).not.toContain(399);
        expect(Array.from(model.tokenize('a zz qq', false))).toContain(398);
      } finally {
        await model.dispose();
      }
      // A decoder token with the text of a piece: refused naming tokenizer_config.json.
      await writeFile(join(dir, 'm', 'tokenizer_config.json'), JSON.stringify({ ...config, added_tokens_decoder: { '399': { content: '<s>', special: true } } }));
      const twice = await runCli(['gguf', join(dir, 'm'), '--out', join(dir, 'twice.gguf')]);
      expect(twice.code).toBe(2);
      expect(twice.stderr).toMatch(/tokenizer_config\.json: gives token 399 the text "<s>", which token 1 has too: llama\.cpp loads no GGUF with a token twice; give each added token its own text/);
      expect(existsSync(join(dir, 'twice.gguf'))).toBe(false);
    });
  }, 120_000);

  it('takes the shards convert_hf_to_gguf takes: a training_args.bin beside them is left out, and said', async () => {
    await withModelCopy(async (dir) => {
      const { writeFile, readFile } = await import('node:fs/promises');
      // What a trainer leaves in a model folder: torch.save of its settings, no weights (stand-in bytes).
      await writeFile(join(dir, 'm', 'training_args.bin'), Buffer.from('PK\x03\x04 not weights'));
      const out = join(dir, 'with-args.gguf');
      const r = await runCli(['gguf', join(dir, 'm'), '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^left out training_args\.bin: not pytorch_model\*\.bin shards, as convert_hf_to_gguf leaves them out\nwrote /);
      const plain = join(dir, 'plain.gguf');
      expect((await runCli(['gguf', join(FIXTURES, 'float16'), '--out', plain])).code).toBe(0);
      // The same file but for the provenance text, which names the folder.
      const info = await nlc.readGgufFileInfo(out, { readTensorInfo: true });
      const infoPlain = await nlc.readGgufFileInfo(plain, { readTensorInfo: true });
      expect(info.fullTensorInfo.map((t: Any) => [t.name, t.ggmlType])).toEqual(infoPlain.fullTensorInfo.map((t: Any) => [t.name, t.ggmlType]));
      const [a, b] = [await readFile(out), await readFile(plain)];
      expect(a.subarray(a.length - 4096).equals(b.subarray(b.length - 4096))).toBe(true);
    });
  }, 60_000);

  it("writes a linear rope_scaling as convert does, and llama.cpp applies it: position 0 unchanged, later positions not; another type is left out and said", async () => {
    await withModelCopy(async (dir, m) => {
      const { writeFile } = await import('node:fs/promises');
      const config = JSON.parse(readFileSync(join(m, 'config.json'), 'utf8'));
      const convert = async (scaling: unknown, out: string) => {
        await writeFile(join(m, 'config.json'), JSON.stringify({ ...config, rope_scaling: scaling }));
        return runCli(['gguf', m, '--out', out]);
      };
      const scaled = join(dir, 'scaled.gguf');
      const r = await convert({ type: 'linear', factor: 4 }, scaled);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const info = await nlc.readGgufFileInfo(scaled);
      expect(info.metadata.llama.rope.scaling).toEqual({ type: 'linear', factor: 4 });
      const plain = join(dir, 'plain.gguf');
      expect((await convert(null, plain)).code).toBe(0);
      expect((await nlc.readGgufFileInfo(plain)).metadata.llama.rope.scaling).toBeUndefined();
      /** llama.cpp's next-token probabilities after `ids`. */
      const next = async (path: string, ids: number[]) => {
        const model = await llama.loadModel({ modelPath: path });
        try {
          const context = await model.createContext({ contextSize: 64 });
          const items: Any[] = ids.slice(0, -1);
          items.push([ids.at(-1), { generateNext: { token: true, probabilities: true } }]);
          const probs: Map<number, number> = (await context.getSequence().controlledEvaluate(items)).at(-1).next.probabilities;
          await context.dispose();
          return Array.from({ length: reference.dims.vocab }, (_, i) => probs.get(i) ?? 0);
        } finally {
          await model.dispose();
        }
      };
      const gap = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
      const prompt = reference.prompts.find((p) => p.length >= 4)!;
      expect(gap(await next(scaled, prompt.slice(0, 1)), await next(plain, prompt.slice(0, 1)))).toBeLessThan(1e-6);
      expect(gap(await next(scaled, prompt), await next(plain, prompt))).toBeGreaterThan(1e-4);
      // A scaling convert writes nothing for: left out, and said; what Python cannot read: exit 2.
      const dynamic = await convert({ type: 'dynamic', factor: 2 }, join(dir, 'dynamic.gguf'));
      expect(dynamic.code).toBe(0);
      expect(dynamic.stderr).toMatch(/warning: config\.json's rope_scaling of type "dynamic" is not in the GGUF \(convert_hf_to_gguf writes only a linear one for LLaMA\)/);
      expect((await nlc.readGgufFileInfo(join(dir, 'dynamic.gguf'))).metadata.llama.rope.scaling).toBeUndefined();
      const list = await convert([4], join(dir, 'list.gguf'));
      expect(list.code).toBe(2);
      expect(list.stderr).toMatch(/config\.json: has a "rope_scaling" that is not an object/);
      const text = await convert({ type: 'linear', factor: '4' }, join(dir, 'text.gguf'));
      expect(text.code).toBe(2);
      expect(text.stderr).toMatch(/config\.json: has a linear "rope_scaling" without a usable "factor"/);
      expect(existsSync(join(dir, 'list.gguf')) || existsSync(join(dir, 'text.gguf'))).toBe(false);
    });
  }, 120_000);

  it('writes the metadata with the exact types llama.cpp checks, and leaves out inv_freq', async () => {
    const out = join(work, 'meta.gguf');
    expect((await runCli(['gguf', join(FIXTURES, 'bfloat16'), '--out', out])).code).toBe(0);
    const info = await nlc.readGgufFileInfo(out, { readTensorInfo: true });
    expect(info.version).toBe(3);
    expect(info.metadata.general.architecture).toBe('llama');
    expect(info.metadata.general.file_type).toBe(32);
    expect(info.metadata.llama.context_length).toBe(2048);
    expect(info.metadata.llama.rope.dimension_count).toBe(16);
    expect(info.metadata.tokenizer.ggml.tokens).toHaveLength(reference.dims.vocab);
    expect(info.fullTensorInfo.map((t: Any) => t.name)).not.toContain('blk.0.attn_rot_embd');
    expect(info.fullTensorInfo.find((t: Any) => t.name === 'blk.0.attn_norm.weight').ggmlType).toBe(0);
  }, 60_000);
});

describe('gguf: bad input and a full disk', () => {
  it('a config that is not LLaMA, a tokenizer.model that does not parse: exit 2 naming the file, nothing written', async () => {
    await withModelCopy(async (dir) => {
      const { writeFile } = await import('node:fs/promises');
      const config = JSON.parse(readFileSync(join(dir, 'm', 'config.json'), 'utf8'));
      await writeFile(join(dir, 'm', 'config.json'), JSON.stringify({ ...config, model_type: 'mistral', architectures: ['MistralForCausalLM'] }));
      const r1 = await runCli(['gguf', join(dir, 'm'), '--out', join(dir, 'a.gguf')]);
      expect(r1.code).toBe(2);
      expect(r1.stderr).toMatch(/config\.json: describes a mistral model, which this GGUF writer cannot convert \(LLaMA only\)/);
      await writeFile(join(dir, 'm', 'config.json'), JSON.stringify(config));
      await writeFile(join(dir, 'm', 'tokenizer.model'), Buffer.from([0x0a, 0xff, 0x01]));
      const r2 = await runCli(['gguf', join(dir, 'm'), '--out', join(dir, 'a.gguf')]);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/tokenizer\.model: is not a SentencePiece model: a field runs past its end/);
      expect(existsSync(join(dir, 'a.gguf'))).toBe(false);
    });
  });

  it('a config that says more than its shards hold, a number GGUF cannot keep or fewer tokens than tokenizer.model has, a token given twice: exit 2 naming the file, at once, nothing written', async () => {
    // Sized by config.json before anything checked it, vocab_size 100000000 had the writer allocate
    // until it ran out of memory (a minute and 6 GB here, then a crash).
    await withModelCopy(async (dir) => {
      const { writeFile } = await import('node:fs/promises');
      const config = JSON.parse(readFileSync(join(dir, 'm', 'config.json'), 'utf8'));
      const run = async (change: Record<string, number>) => {
        await writeFile(join(dir, 'm', 'config.json'), JSON.stringify({ ...config, ...change }));
        const started = performance.now();
        const r = await runCli(['gguf', join(dir, 'm'), '--out', join(dir, 'a.gguf')]);
        return { ...r, seconds: (performance.now() - started) / 1000 };
      };
      const vocab = await run({ vocab_size: 100_000_000 });
      expect(vocab.code).toBe(2);
      expect(vocab.stderr.trim().split('\n')).toHaveLength(1);
      expect(vocab.stderr).toMatch(/config\.json: describes a LLaMA of 1\.28e\+10 values \(vocab_size 100000000, hidden_size 64, intermediate_size 256, num_hidden_layers 2\): at least 25\.6 GB, more than its 2 shards hold \(\d+ kB\); use the model's own config\.json/);
      expect(vocab.seconds).toBeLessThan(20);
      const layers = await run({ num_hidden_layers: 1_000_000_000 });
      expect(layers.code).toBe(2);
      expect(layers.stderr).toMatch(/config\.json: describes a LLaMA of .*num_hidden_layers 1000000000\)/);
      // GGUF keeps it as a u32: 2^40 was an internal error (exit 70) where the header was written.
      const context = await run({ max_position_embeddings: 2 ** 40 });
      expect(context.code).toBe(2);
      expect(context.stderr).toMatch(/config\.json: has no usable "max_position_embeddings" \(a positive whole number below 2\^32\); use the model's own config\.json/);
      const fewer = await run({ vocab_size: 399 });
      expect(fewer.code).toBe(2);
      expect(fewer.stderr).toMatch(/tokenizer\.model: has 400 pieces, more than config\.json's vocab_size \(399\): llama\.cpp loads no GGUF with more tokens than embeddings/);
      expect(existsSync(join(dir, 'a.gguf'))).toBe(false);
      // An added token with the text of a piece: llama.cpp asserts that no token repeats as it loads.
      await writeFile(join(dir, 'm', 'added_tokens.json'), JSON.stringify({ '<s>': 400 }));
      const repeated = await run({ vocab_size: 401 });
      expect(repeated.code).toBe(2);
      expect(repeated.stderr).toMatch(/added_tokens\.json: gives token 400 the text "<s>", which token 1 has too: llama\.cpp loads no GGUF with a token twice; give each added token its own text/);
      // A token of its own passes that check, and the run stops where the shards hold 400 rows.
      await writeFile(join(dir, 'm', 'added_tokens.json'), JSON.stringify({ '<|model|>': 400 }));
      const own = await run({ vocab_size: 401 });
      expect(own.code).toBe(2);
      expect(own.stderr).toMatch(/holds "model\.embed_tokens\.weight" as \[400,64\], where its config\.json says \[401,64\]/);
      expect(existsSync(join(dir, 'a.gguf'))).toBe(false);
    });
  });

  it('an --out that is a file the conversion reads (a shard, config.json, a link to one): exit 2 naming it, even with --force, every input intact', async () => {
    // `--out ./m/pytorch_model-00001-of-00002.bin --force` replaced the shard with the GGUF (exit 0).
    await withModelCopy(async (dir, m) => {
      const { readdir, readFile, symlink } = await import('node:fs/promises');
      const before = new Map(await Promise.all((await readdir(m)).map(async (n) => [n, await readFile(join(m, n))] as const)));
      await symlink(join(m, 'tokenizer.model'), join(dir, 'link.gguf'));
      for (const [out, name] of [
        [join(m, 'pytorch_model-00002-of-00002.bin'), 'pytorch_model-00002-of-00002.bin'],
        [join(m, 'config.json'), 'config.json'],
        [join(dir, 'link.gguf'), 'tokenizer.model'],
      ] as const) {
        const r = await runCli(['gguf', m, '--out', out, '--force']);
        expect(r.code, out).toBe(2);
        expect(r.stderr).toBe(`metharme-xor: error: ${out}: is the model folder's ${name}, which the conversion reads; pass --out a new file, e.g. one ending in .gguf\n`);
      }
      for (const [n, bytes] of before) expect((await readFile(join(m, n))).equals(bytes), n).toBe(true);
      expect((await readdir(m)).sort()).toEqual([...before.keys()].sort());
      // A new file in the folder is fine.
      expect((await runCli(['gguf', m, '--out', join(m, 'm-F16.gguf')])).code).toBe(0);
    });
  }, 60_000);

  it('a full disk: exit 3 naming the file, and no GGUF under its final name', async (ctx) => {
    const mount = join(work, 'small');
    await withTmpfs(ctx, mount, 'size=256k', async () => {
      const out = join(mount, 'full.gguf');
      const r = await runCli(['gguf', join(FIXTURES, 'float16'), '--out', out]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/full\.gguf: .*(no space|ENOSPC)/i);
      expect(existsSync(out)).toBe(false);
    });
  });
});
