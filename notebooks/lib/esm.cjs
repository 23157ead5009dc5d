// Loads an ES module from a real CommonJS module, where `import()` works (tslab's cells cannot call it).
module.exports = { importEsm: (specifier) => import(specifier) };
