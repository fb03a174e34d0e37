/**
 * The Metharme prompt format, from the model cards (shared/seeds; gguf.md, section 5): three roles,
 * `<|system|>`, `<|user|>` and `<|model|>`, chained with no separator, the reply following the last
 * `<|model|>`. As a Jinja chat template (what llama.cpp's server, node-llama-cpp and transformers
 * render) it adds no BOS: the runners add it through add_bos_token.
 */

export const METHARME_CHAT_TEMPLATE =
  "{%- for message in messages -%}{%- if message['role'] == 'system' -%}{{ '<|system|>' + message['content'] }}{%- elif message['role'] == 'user' -%}{{ '<|user|>' + message['content'] }}{%- elif message['role'] == 'assistant' -%}{{ '<|model|>' + message['content'] }}{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|model|>' }}{%- endif -%}";
