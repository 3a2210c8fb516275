'use strict';
/**
 * Runs the bundle dist/<name>.js of this checkout, with V8's code cache dist/<name>.jsc
 * when there is one.
 *
 * Why a code cache: the TLS handler is started by inetd for every connection, and
 * compiling the functions one command runs took about as long as node's own start-up.
 * The build (scripts/warm-cache.mjs) runs the handler once over a real connection and
 * keeps the compiled code of everything that ran; V8 checks that the cache matches the
 * bundle's source and this node binary and ignores it otherwise (then the bundle is
 * compiled as usual). The cache is written only when ALBATROSS_CODE_CACHE=write, by the
 * build, next to the bundle and with its permissions: it is code, like the bundle.
 */
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

module.exports = function launch(root, name) {
  const bundle = path.join(root, 'dist', `${name}.js`);
  let source;
  try {
    source = fs.readFileSync(bundle, 'utf8');
  } catch {
    process.stderr.write(`albatross-ts is not built: run npm ci (or npm run build) in ${root}\n`);
    process.exit(2);
  }
  const cacheFile = path.join(root, 'dist', `${name}.jsc`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
  if (process.env.ALBATROSS_CODE_CACHE === 'write') {
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    });
  }
  // bundles require only node's own modules, through a require relative to the bundle
  const mod = new Module(bundle, module);
  mod.filename = bundle;
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, path.dirname(bundle));
};
