// `require('bge-m3-tfjs')` lands here (the "require" condition of package.json's "exports"). The package
// is ESM only; Node 20 cannot require() an ES module by default, so this says how to load it instead.
'use strict';
const err = new Error(
  "bge-m3-tfjs is an ES module only (no CommonJS build). From CommonJS, load it with a dynamic import:\n" +
    "  const { BgeM3 } = await import('bge-m3-tfjs');\n" +
    "(inside an async function, or `import('bge-m3-tfjs').then(({ BgeM3 }) => ...)`); from an ES module: import { BgeM3 } from 'bge-m3-tfjs';",
);
err.code = 'ERR_REQUIRE_ESM';
throw err;
