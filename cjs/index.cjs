'use strict';
// CommonJS entry. Node >= 20.19 (and 22.12) can require() the ES module build directly; older
// runtimes cannot, and get a clear way out instead of ERR_PACKAGE_PATH_NOT_EXPORTED.
try {
  module.exports = require('../dist/index.js');
} catch (err) {
  if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    throw new Error(
      `metharme-xor is an ES module, and this Node.js (${process.version}) cannot require() one: ` +
        'use "const { decode } = await import(\'metharme-xor\')", or Node.js >= 20.19',
      { cause: err },
    );
  }
  throw err;
}
