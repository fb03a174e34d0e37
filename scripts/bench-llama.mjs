/**
 * The LLaMA part of `npm run bench`: a release of a made-up LLaMA of about the asked size in one
 * 2023 shard, decoded (c') against the exact base on disk; (h, i) against a base rebuilt on the fly
 * from the same LLaMA held as safetensors and in Meta's layout (issue 20, item 8); (j, k, l) into a
 * GGUF in the same pass, lossless, Q8_0 and Q4_K_M (issue 21, item 7). The base's Meta file is written by the
 * library's own torch zip writer (random fp16 bits: a rebuild only moves them); the fine-tune's
 * weights are plausible fp16 values, so that a conversion meets the numbers it would in a model.
 */
import { randomFillSync, createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const CHUNK = 16 << 20;

export async function llamaBench({ root, dist, dir, size, runs, timed, warm, median, log }) {
  const { RebuiltShard } = await import(join(dist, 'rebuild', 'rebuilt-shard.js'));
  const { llamaDims } = await import(join(dist, 'rebuild', 'llama-shapes.js'));
  const { openRebuilt, planRebuild } = await import(join(dist, 'rebuild', 'rebuild-plan.js'));
  const { openLocated } = await import(join(dist, 'rebuild', 'located-tensors.js'));
  const { locateTorch } = await import(join(dist, 'rebuild', 'torch-zip-tensors.js'));
  const { xorInto } = await import(join(dist, 'index.js'));

  // From 512 MiB: dim 2048, 16 heads (~262 MB of embedding and head, ~103 MB a layer); below, a
  // narrower model with a smaller vocabulary, so that small runs (the bench's own test) stay small.
  const [dim, heads, vocab] = size >= 512 << 20 ? [2048, 16, 32000] : [256, 4, 4096];
  const shape = llamaDims(dim, 1, heads, vocab);
  const perLayer = 4 * dim * dim * 2 + 3 * dim * shape.intermediate * 2;
  const layers = Math.max(1, Math.round((size - 2 * vocab * dim * 2) / perLayer));
  const d = llamaDims(dim, layers, heads, vocab);
  const metaDir = join(dir, 'llama-meta');
  const stDir = join(dir, 'llama-safetensors');
  const baseDir = join(dir, 'llama-exact');
  const xorDir = join(dir, 'rebuild-xor');
  for (const f of [metaDir, stDir, baseDir, xorDir]) mkdirSync(f, { recursive: true });
  log(`generating LLaMA ${d.dim}x${d.layers} in Meta's layout, as safetensors and as the exact base ...`);

  // Meta's consolidated.00.pth (model parallel 1), in Meta's names and order.
  const f16 = (name, ...shape) => ({ name, dtype: 'F16', shape });
  const meta = [f16('tok_embeddings.weight', d.vocab, d.dim), f16('norm.weight', d.dim), f16('output.weight', d.vocab, d.dim)];
  for (let i = 0; i < d.layers; i++) {
    const p = `layers.${i}.`;
    meta.push(
      f16(`${p}attention.wq.weight`, d.dim, d.dim),
      f16(`${p}attention.wk.weight`, d.dim, d.dim),
      f16(`${p}attention.wv.weight`, d.dim, d.dim),
      f16(`${p}attention.wo.weight`, d.dim, d.dim),
      f16(`${p}feed_forward.w1.weight`, d.intermediate, d.dim),
      f16(`${p}feed_forward.w2.weight`, d.dim, d.intermediate),
      f16(`${p}feed_forward.w3.weight`, d.intermediate, d.dim),
      f16(`${p}attention_norm.weight`, d.dim),
      f16(`${p}ffn_norm.weight`, d.dim),
    );
  }
  const random = { read: async (_name, _offset, buf, length) => void randomFillSync(buf, 0, length), close: async () => {} };
  await drain(new RebuiltShard('consolidated.00.pth', 'consolidated', meta, random), join(metaDir, 'consolidated.00.pth'));
  writeFileSync(join(metaDir, 'params.json'), JSON.stringify({ dim: d.dim, multiple_of: 256, n_heads: d.heads, n_layers: d.layers, norm_eps: 1e-6, vocab_size: -1 }));

  // The exact base: what the rebuild gives from Meta's file.
  const plan = await planRebuild(metaDir);
  const input = plan.files.get('pytorch_model.bin');
  if (!input) throw new Error('the bench model does not fit one 2023 shard');
  const basePath = join(baseDir, 'pytorch_model.bin');
  await drain(await openRebuilt('pytorch_model.bin', input), basePath);

  // The same tensors as a newer conversion saves them: one safetensors file, no inv_freq.
  const reader = await openLocated(baseDir, ['pytorch_model.bin'], locateTorch, Buffer.alloc(0));
  const tensors = input.tensors.filter((t) => !t.name.endsWith('inv_freq'));
  const header = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((n, x) => n * x, 1) * (t.dtype === 'F16' ? 2 : 4);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const st = openSync(join(stDir, 'model.safetensors'), 'w');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeSync(st, length);
  writeSync(st, json);
  const buf = Buffer.alloc(CHUNK);
  for (const t of tensors) {
    const bytes = header[t.name].data_offsets[1] - header[t.name].data_offsets[0];
    for (let at = 0; at < bytes; at += CHUNK) {
      const n = Math.min(CHUNK, bytes - at);
      await reader.read(t.name, at, buf, n);
      writeSync(st, buf, 0, n);
    }
  }
  closeSync(st);
  await reader.close();
  writeFileSync(join(stDir, 'config.json'), JSON.stringify({ num_attention_heads: d.heads }));

  // A release of a made-up fine-tune: every tensor's bytes changed, the zip structure and data.pkl
  // kept (the payload is zero there); the digest is of payload XOR base.
  const { readZipDirectory } = await import(join(dist, 'release', 'zip-directory.js'));
  const tail = Buffer.alloc(Math.min(input.size, 4 << 20));
  const base = openSync(basePath, 'r');
  readFully(base, tail, input.size - tail.length);
  const head = Buffer.alloc(30);
  const ranges = readZipDirectory(tail, input.size - tail.length).records.filter((r) => /\/data\/\d+$/.test(r.name)).map((r) => {
    readFully(base, head, r.localOffset);
    const at = r.localOffset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
    return [at, at + r.size];
  });
  // The payload: zero outside the tensors (the structure is the base's), base XOR a plausible fp16
  // value inside (|x| from 2^-7 to 2^-1, either sign).
  const changed = (from, n, baseBytes) => {
    const p = Buffer.alloc(n);
    for (const [a, b] of ranges) {
      const lo = Math.max(a, from);
      const hi = Math.min(b, from + n);
      if (lo >= hi) continue;
      const noise = randomFillSync(Buffer.alloc(hi - lo));
      for (let i = lo - from; i + 1 < hi - from; i += 2) {
        const r = noise.readUInt16LE(i - (lo - from));
        const value = (r & 0x8000) | ((8 + (r % 7)) << 10) | ((r * 2654435761) >>> 22);
        p.writeUInt16LE(value ^ baseBytes.readUInt16LE(i), i);
      }
    }
    return p;
  };
  const fine = createHash('sha256');
  const payload = openSync(join(xorDir, 'pytorch_model.bin'), 'w');
  for (let at = 0; at < input.size; at += CHUNK) {
    const n = Math.min(CHUNK, input.size - at);
    const b = Buffer.alloc(n);
    readFully(base, b, at);
    const p = changed(at, n, b);
    writeSync(payload, p);
    xorInto(b, p, n);
    fine.update(b);
  }
  closeSync(payload);
  closeSync(base);
  // What a GGUF needs beside the shard: config.json (shipped plain) and tokenizer.model (XORed: zeros).
  const config = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: d.dim, intermediate_size: d.intermediate, num_attention_heads: d.heads, num_hidden_layers: d.layers, vocab_size: d.vocab, max_position_embeddings: 2048, rms_norm_eps: 1e-6, torch_dtype: 'float16', bos_token_id: 1, eos_token_id: 2 };
  const configBytes = Buffer.from(`${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(xorDir, 'config.json'), configBytes);
  const tokenizer = tokenizerModel(d.vocab);
  for (const folder of [baseDir, stDir, metaDir]) writeFileSync(join(folder, 'tokenizer.model'), tokenizer);
  writeFileSync(join(xorDir, 'tokenizer.model'), Buffer.alloc(tokenizer.length));
  const sums = join(dir, 'SHA256SUMS.rebuild');
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  writeFileSync(sums, `${fine.digest('hex')}  pytorch_model.bin\n${sha(configBytes)}  config.json\n${sha(tokenizer)}  tokenizer.model\n`);

  for (const path of [join(xorDir, 'pytorch_model.bin'), basePath, join(stDir, 'model.safetensors'), join(metaDir, 'consolidated.00.pth')]) await warm(path);
  const bin = join(root, 'bin', 'metharme-xor.js');
  const decodeAgainst = (name, against, extra = []) => () => {
    const out = join(dir, `out-${name}`);
    const r = timed(process.execPath, [bin, 'decode', out, xorDir, against, '--manifest', sums, '--json', ...extra]);
    const report = JSON.parse(r.stdout);
    if (report.exitCode !== 0 || report.files.some((f) => f.status !== 'verified')) throw new Error(`decode against ${name} did not verify`);
    if (extra.includes('--gguf') && !report.gguf?.written) throw new Error(`decode ${extra.join(' ')} wrote no GGUF`);
    return { seconds: r.seconds, peakRss: report.totals.peakRssBytes, cleanup: out };
  };
  const cases = {
    exact: decodeAgainst('exact', baseDir),
    safetensors: decodeAgainst('safetensors', stDir),
    meta: decodeAgainst('meta', metaDir),
    gguf: decodeAgainst('gguf', baseDir, ['--gguf']),
    ggufQ8: decodeAgainst('gguf-q8', baseDir, ['--gguf', 'q8_0']),
    ggufQ4: decodeAgainst('gguf-q4', baseDir, ['--gguf', 'q4_k_m']),
  };
  const samples = Object.fromEntries(Object.keys(cases).map((n) => [n, []]));
  const rss = Object.fromEntries(Object.keys(cases).map((n) => [n, []]));
  const names = Object.keys(cases);
  for (let run = 0; run < runs; run++) {
    for (const name of names.map((_, i) => names[(i + run) % names.length])) {
      const r = cases[name]();
      rmSync(r.cleanup, { recursive: true, force: true });
      samples[name].push(r.seconds);
      rss[name].push(r.peakRss);
      log(`  run ${run + 1}/${runs}  llama:${name.padEnd(11)} ${r.seconds.toFixed(3)} s`);
    }
  }
  const med = Object.fromEntries(names.map((n) => [n, median(samples[n])]));
  return {
    model: `LLaMA ${d.dim}x${d.layers}`,
    bytes: input.size,
    medianSeconds: med,
    // The fastest and slowest run of each: how far this machine moved during the bench.
    rangeSeconds: Object.fromEntries(names.map((n) => [n, [Math.min(...samples[n]), Math.max(...samples[n])]])),
    peakRssBytes: Object.fromEntries(names.map((n) => [n, Math.max(...rss[n])])),
    ratios: { safetensorsOverExact: med.safetensors / med.exact, metaOverExact: med.meta / med.exact, ggufOverExact: med.gguf / med.exact, ggufQ8OverExact: med.ggufQ8 / med.exact, ggufQ4OverExact: med.ggufQ4 / med.exact },
    aims: { safetensorsOverExact: 1.3, metaOverExact: 1.3, ggufOverExact: 1.2, ggufQ8OverExact: 1.5, ggufQ4OverExact: 3 },
  };
}

/** A SentencePiece ModelProto of `vocab` pieces in LLaMA's layout: <unk>, <s>, </s>, 256 bytes, then words. */
function tokenizerModel(vocab) {
  const varint = (n) => {
    const out = [];
    for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
    out.push(n);
    return Buffer.from(out);
  };
  const pieces = [];
  for (let id = 0; id < vocab; id++) {
    const [text, type] = id === 0 ? ['<unk>', 2] : id < 3 ? [id === 1 ? '<s>' : '</s>', 3] : id < 259 ? [`<0x${(id - 3).toString(16).toUpperCase().padStart(2, '0')}>`, 6] : [`\u2581w${id}`, 1];
    const t = Buffer.from(text, 'utf8');
    const score = Buffer.alloc(4);
    score.writeFloatLE(id < 259 ? 0 : -id);
    const body = Buffer.concat([Buffer.from([0x0a]), varint(t.length), t, Buffer.from([0x15]), score, Buffer.from([0x18]), varint(type)]);
    pieces.push(Buffer.from([0x0a]), varint(body.length), body);
  }
  return Buffer.concat(pieces);
}

async function drain(source, path) {
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(CHUNK);
  try {
    for (;;) {
      const n = await source.read(buf, buf.length);
      if (n === 0) break;
      writeSync(fd, buf, 0, n);
    }
  } finally {
    closeSync(fd);
    await source.close();
  }
}

function readFully(fd, buf, at) {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, at + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
