/**
 * Built-in manifests: the digests published for each XOR release and for the LLaMA base conversions
 * they were made against (facts from shared/reference/published-checksums.md). Every digest keeps the
 * name of the place it was published, because public sources sometimes disagree and users need to
 * know which one a file matched. Data only: models.ts reads it.
 */

export type ModelKind = 'release' | 'base';

export interface DigestSource {
  /** Where these digests were published. */
  label: string;
  /** Lines in coreutils format: "<hex>  <name>". */
  lines: string;
}

export interface BuiltinModel {
  name: string;
  /** For releases: the Hugging Face Hub repository the XOR files are published in. */
  repo?: string;
  kind: ModelKind;
  /** For releases: the base conversion the XOR files were made against. */
  base?: string;
  description: string;
  /** For base conversions: how the published conversion was made, as far as it is known. */
  conversion?: string;
  /** The first source is the primary one: `manifest <name>` prints it as checksum lines. */
  sources: DigestSource[];
}

export const MODELS: readonly BuiltinModel[] = [
  {
    name: 'metharme-13b',
    repo: 'PygmalionAI/metharme-13b',
    kind: 'release',
    base: 'llama-13b-hf',
    description: 'PygmalionAI Metharme 13B (instruct), XOR release against LLaMA-13B',
    sources: [
      {
        label: 'Hugging Face model card PygmalionAI/metharme-13b (rhash --sha256)',
        lines: `
be2c276865d1b0759257c0934275f05e02ee520657c2d8ebe3f2a2db1562949a  config.json
a23652fc622a27b8863c39f524707796967095b2a85f334561b11422f71445a2  generation_config.json
78caa8fd29e4bf2fafcec71ba2b48afcb9516b7d1a43ce20cd0c511c620a42a2  pytorch_model-00001-of-00003.bin
7cef1f81c0f0bf130b331c4c9c26955da3913d62f141117e85fd5882d6cdf0d0  pytorch_model-00002-of-00003.bin
1059a1efade70d4a1a9f66176631f0dae239c50dd5c89d62deb873b3d4ea49a1  pytorch_model-00003-of-00003.bin
72e91e29282dae48ea5562fcf4d6ca0d5a9c2a30ebc8d67174a19e192552a20b  pytorch_model.bin.index.json
f9ffc4aede0845ab65324ce5dccb823dca2427f9a0710981e5bc2398d73d8162  tokenizer.json
9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347  tokenizer.model
bd87e244d21d45c358e5d822aeb2efd4e4d60127e43b648ed3efe7823fd35060  tokenizer_config.json`,
      },
      {
        label: 'Hugging Face model card PygmalionAI/metharme-13b at commit 9e066ba',
        lines: `85467905c66f9b86d07896fe55c5b1a6ba322ad9a73b53806e6b5e105831a71c  config.json`,
      },
      {
        label: 'PygmalionAI docs, "Metharme 13B Merged Weights" (sha256sum)',
        lines: `
07727e130b7e4ec66162920b4e090554e6c58e87d25b433ab8123eb3a55fd5e7  pytorch_model-00001-of-00003.bin
26b6f7e020c94347280d8952b054275fe2293267f9a0e99e1c2bf4df724d99d9  pytorch_model-00002-of-00003.bin
5d00548d2c28ced08ec7b4123749f20e9ca4af2a821724f9ec47a1c5cf0f66d4  pytorch_model-00003-of-00003.bin
68147850c080987172d24ad27a9ba2c65c71b46e248e8ee0f0c4eda90e2ca558  tokenizer.model`,
      },
    ],
  },
  {
    name: 'metharme-7b',
    repo: 'PygmalionAI/metharme-7b',
    kind: 'release',
    base: 'llama-7b-hf',
    description: 'PygmalionAI Metharme 7B (instruct), XOR release against LLaMA-7B',
    sources: [
      {
        label: 'PygmalionAI docs, "Merged Metharme 7B weights" (SHA-256)',
        lines: `
e6e95f80203ae4d3925d420e9eeb31fc11fa4d9a49b40d8c6499838365e3f5a8  config.json
062a37a6d986c38231880f5cce4fa9a0145aeefcf8be9ab23ddf7d600c037aea  generation_config.json
7ba01a5594b0a507290cf5fbf77e2456801773dd62f1993a8f21b92156e70533  pytorch_model-00001-of-00002.bin
58e523a7f79427ed166a505c54fa7ebe96bd6b2fde35f980b184039faca8989f  pytorch_model-00002-of-00002.bin
aca3c1facc89d12311a667c32e85ac86e625990992ea8a189e3b036ba371b931  pytorch_model.bin.index.json
ff3b4a612c4e447acb02d40071bddd989fe0da87eb5b7fe0dbadfc4f74de7531  special_tokens_map.json
9e7aa7d0f67f207036d981d7bbabfbf4b521c4c089c0280fcc08ef9c732634b5  tokenizer_config.json
f9ffc4aede0845ab65324ce5dccb823dca2427f9a0710981e5bc2398d73d8162  tokenizer.json
9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347  tokenizer.model`,
      },
      {
        label: 'Hugging Face model card PygmalionAI/metharme-7b (rhash -M, partly recovered)',
        lines: `
4ad1977f59098f1b9dd022684f70e3d8  config.json
2917a1cafb895cf57e746cfd7696bfe5  generation_config.json`,
      },
    ],
  },
  {
    name: 'pygmalion-13b',
    repo: 'PygmalionAI/pygmalion-13b',
    kind: 'release',
    base: 'llama-13b-hf',
    description: 'PygmalionAI Pygmalion 13B (conversational), XOR release against LLaMA-13B',
    sources: [
      {
        label: 'Hugging Face model card PygmalionAI/pygmalion-13b (SHA-256)',
        lines: `
3b12e6740652990ac386b6136119aaca698aa547d9460e1ef243a7d17d489fe3  config.json
e14c4af01ea4febe3448d9db29c6dbd982966c5161a31c5185b8fe6d6796509a  generation_config.json
6b05c8e8ae9c1065e4c7cfd2b61311191d2ad5735a2e4beab98fc53b49375af8  pytorch_model-00001-of-00003.bin
4cd096ac310b6bbc3acd3d729277427ad3c3d5740619462dc8f907dfeac3e66f  pytorch_model-00002-of-00003.bin
a2fe9ac5d7005e65c58b8d14818678dd0730689f518612b90cca19fed7c483ad  pytorch_model-00003-of-00003.bin
72e91e29282dae48ea5562fcf4d6ca0d5a9c2a30ebc8d67174a19e192552a20b  pytorch_model.bin.index.json
ff3b4a612c4e447acb02d40071bddd989fe0da87eb5b7fe0dbadfc4f74de7531  special_tokens_map.json
f9ffc4aede0845ab65324ce5dccb823dca2427f9a0710981e5bc2398d73d8162  tokenizer.json
9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347  tokenizer.model
380608719f3af6ef2b343e2ed53bf55556678609337e88a14f58cc49177b9e18  tokenizer_config.json`,
      },
    ],
  },
  {
    name: 'pygmalion-7b',
    repo: 'PygmalionAI/pygmalion-7b',
    kind: 'release',
    base: 'llama-7b-hf',
    description: 'PygmalionAI Pygmalion 7B (conversational), XOR release against LLaMA-7B',
    sources: [
      {
        label: 'Hugging Face model card PygmalionAI/pygmalion-7b (rhash -M)',
        lines: `
4608facb4910118f8dfa80f090cbc4dc  config.json
2917a1cafb895cf57e746cfd7696bfe5  generation_config.json
98764eb949eea16f8e2e1c2d3dea0066  pytorch_model-00001-of-00002.bin
be9ba2f37228a0a9ea0eaf6530aba4de  pytorch_model-00002-of-00002.bin
81648ef3915ed2e83d49fed93122d53e  pytorch_model.bin.index.json
6b2e0a735969660e720c27061ef3f3d3  special_tokens_map.json
fdb311c39b8659a5d5c1991339bafc09  tokenizer.json
eeec4125e9c7560836b4873b6f8e3025  tokenizer.model
9b3cf7b8c0e4783dbc1419b4cafe8e1e  tokenizer_config.json`,
      },
      {
        label: 'PygmalionAI docs, MD5 list (early revision)',
        lines: `f0b65b44265ba51881b1e1881102504f  tokenizer_config.json`,
      },
      {
        label: 'PygmalionAI docs, SHA-256 of the merged weights',
        lines: `
e6e95f80203ae4d3925d420e9eeb31fc11fa4d9a49b40d8c6499838365e3f5a8  config.json
062a37a6d986c38231880f5cce4fa9a0145aeefcf8be9ab23ddf7d600c037aea  generation_config.json
61bcb043c3c4dc4d567ffea91b3074c70d54089eb3f1872b945d7a4e32677edf  pytorch_model-00001-of-00002.bin
41ebe6971edc8f04b0784ef8ed54216fcd36f8a4d51faf415851c9b824769ba2  pytorch_model-00002-of-00002.bin
aca3c1facc89d12311a667c32e85ac86e625990992ea8a189e3b036ba371b931  pytorch_model.bin.index.json
ff3b4a612c4e447acb02d40071bddd989fe0da87eb5b7fe0dbadfc4f74de7531  special_tokens_map.json
9e7aa7d0f67f207036d981d7bbabfbf4b521c4c089c0280fcc08ef9c732634b5  tokenizer_config.json
f9ffc4aede0845ab65324ce5dccb823dca2427f9a0710981e5bc2398d73d8162  tokenizer.json
9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347  tokenizer.model`,
      },
    ],
  },
  {
    name: 'oasst-sft-6-llama-30b',
    repo: 'OpenAssistant/oasst-sft-6-llama-30b-xor',
    kind: 'release',
    base: 'llama-30b-hf',
    description: 'OpenAssistant SFT-6 LLaMA 30B, XOR release against LLaMA-30B (added_tokens.json ships plain)',
    sources: [
      {
        label: 'Hugging Face model card OpenAssistant/oasst-sft-6-llama-30b-xor, step 8 (MD5)',
        lines: `
ff6e4cf43ddf02fb5d3960f850af1220  pytorch_model-00001-of-00007.bin
ae48c4c68e4e171d502dd0896aa19a84  pytorch_model-00002-of-00007.bin
659fcb7598dcd22e7d008189ecb2bb42  pytorch_model-00003-of-00007.bin
f7aefb4c63be2ac512fd905b45295235  pytorch_model-00004-of-00007.bin
740c324ae65b1ec25976643cda79e479  pytorch_model-00005-of-00007.bin
369df2f0e38bda0d9629a12a77c10dfc  pytorch_model-00006-of-00007.bin
970e99665d66ba3fad6fdf9b4910acc5  pytorch_model-00007-of-00007.bin
76d47e4f51a8df1d703c6f594981fcab  pytorch_model.bin.index.json
cc9dbf56b68b68a585cc7367696e06a7  config.json
2917a1cafb895cf57e746cfd7696bfe5  generation_config.json
27b0dc092f99aa2efaf467b2d8026c3f  added_tokens.json
eeec4125e9c7560836b4873b6f8e3025  tokenizer.model
fd9452959d711be29ccf04a97598e8d1  tokenizer_config.json
785905630a0fe583122a8446a5abe287  special_tokens_map.json`,
      },
    ],
  },
  {
    name: 'llama-7b-hf',
    kind: 'base',
    description: 'LLaMA-7B converted to the Hugging Face format, as the Pygmalion/Metharme 7B XORs expect',
    conversion: 'the conversion whose digests the PygmalionAI docs publish ("metharme-xor manifest llama-7b-hf")',
    sources: [
      {
        label: 'PygmalionAI docs, llama-7b-hf (SHA-256)',
        lines: `
e4c3dea29aefc16c0e63825f9ae097dbf5cb5d7c320843a84257e11be3b452c8  config.json
fd7ff399e5568cc21a0a8414f43df88ef7c424995b9b97a90563165d2cf79efd  generation_config.json
0087155d6df07106c1d910bfeb6aab1be8e612dfbf2b56ddfb4ccbde7dbd50d0  pytorch_model-00001-of-00002.bin
461bc5e50200db7813ff99cc0b9316c48ccbd6aaaa31bf8cf7bee0b64bc3eda3  pytorch_model-00002-of-00002.bin
aca3c1facc89d12311a667c32e85ac86e625990992ea8a189e3b036ba371b931  pytorch_model.bin.index.json
ff3b4a612c4e447acb02d40071bddd989fe0da87eb5b7fe0dbadfc4f74de7531  special_tokens_map.json
380608719f3af6ef2b343e2ed53bf55556678609337e88a14f58cc49177b9e18  tokenizer_config.json
f9ffc4aede0845ab65324ce5dccb823dca2427f9a0710981e5bc2398d73d8162  tokenizer.json
9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347  tokenizer.model`,
      },
    ],
  },
  {
    name: 'llama-13b-hf',
    kind: 'base',
    description: 'LLaMA-13B converted to the Hugging Face format, as the Pygmalion/Metharme 13B XORs expect',
    conversion: 'the conversion whose digests the PygmalionAI docs publish ("metharme-xor manifest llama-13b-hf")',
    sources: [
      {
        label: 'PygmalionAI docs, llama-13b-hf (SHA-256)',
        lines: `
ad440bbb8f4af8f499a905f13b073ce3abbc3d4c43d5570ba2583eb296b74727  config.json
fd7ff399e5568cc21a0a8414f43df88ef7c424995b9b97a90563165d2cf79efd  generation_config.json
dd20cdee2637408c6ab88c13f5c27d153bacd0e99f2d55f6a66fbd0269944436  pytorch_model-00001-of-00003.bin
1aba886c5f28d2e2e9b04ab3c4f5bc250c6b06efc1baa3f557677b3097f70e6a  pytorch_model-00002-of-00003.bin
eac58861ca5f3749c819676d908b906d3df38046c09efe055fe78d7678b718e7  pytorch_model-00003-of-00003.bin
92c31ad5e853e9a6660e248871f9bd0cd273518de7ec12ca893e1b1078c10898  pytorch_model.bin.index.json
380608719f3af6ef2b343e2ed53bf55556678609337e88a14f58cc49177b9e18  tokenizer_config.json
f9ffc4aede0845ab65324ce5dccb823dca2427f9a0710981e5bc2398d73d8162  tokenizer.json
9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347  tokenizer.model`,
      },
    ],
  },
  {
    name: 'llama-30b-hf',
    kind: 'base',
    description:
      'LLaMA-30B converted to the Hugging Face format with transformers d04ec99bec8a0b432fc03ed60cea9a1a20ebaf3c, as the OpenAssistant 30B XORs expect',
    conversion:
      'transformers commit d04ec99bec8a0b432fc03ed60cea9a1a20ebaf3c, torch 1.13.1, accelerate 0.18.0, sentencepiece 0.1.98, protobuf 3.20.1, Python 3.10',
    sources: [
      {
        label: 'Hugging Face model card OpenAssistant/oasst-sft-6-llama-30b-xor, step 6 (MD5)',
        lines: `
9cffb1aeba11b16da84b56abb773d099  pytorch_model-00001-of-00007.bin
5cfcb78b908ffa02e681cce69dbe4303  pytorch_model-00002-of-00007.bin
e1dc8c48a65279fb1fbccff14562e6a3  pytorch_model-00003-of-00007.bin
3eddc6fc02c0172d38727e5826181adb  pytorch_model-00004-of-00007.bin
92754d6c6f291819ffc3dfcaf470f541  pytorch_model-00005-of-00007.bin
99762d59efa6b96599e863893cf2da02  pytorch_model-00006-of-00007.bin
462a2d07f65776f27c0facfa2affb9f9  pytorch_model-00007-of-00007.bin
fecfda4fba7bfd911e187a85db5fa2ef  pytorch_model.bin.index.json
598538f18fed1877b41f77de034c0c8a  config.json
aee09e21813368c49baaece120125ae3  generation_config.json
eeec4125e9c7560836b4873b6f8e3025  tokenizer.model
fdb311c39b8659a5d5c1991339bafc09  tokenizer.json
edd1a5897748864768b1fab645b31491  tokenizer_config.json
6b2e0a735969660e720c27061ef3f3d3  special_tokens_map.json`,
      },
    ],
  },
];

