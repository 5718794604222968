import { defineConfig } from "vite";

// The designer is built on the SDK's sources (client-sdk/src), compiled
// into this bundle; its own dependencies resolve from web/node_modules so
// that there is one copy of Yjs and the build does not depend on whether
// client-sdk/node_modules exists.
const SDK = decodeURIComponent(new URL("../client-sdk/src/index.ts", import.meta.url).pathname);
const SHARED = ["yjs", "y-websocket", "y-protocols", "lib0", "y-indexeddb"];

// The output is committed and embedded in the server binary, so it must be
// byte-for-byte reproducible and must satisfy a strict CSP
// (script-src 'self'; style-src 'self'): no inline scripts or styles.
export default defineConfig({
  base: "/",
  resolve: {
    alias: { "@coform/sdk": SDK },
    dedupe: SHARED,
  },
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    // The polyfill would be an inline <script>, which the CSP forbids.
    modulePreload: { polyfill: false },
    // Never inline small assets as data: URLs; every asset is a file.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    reportCompressedSize: true,
    rolldownOptions: {
      output: {
        entryFileNames: "assets/[name]-[hash].js",
        chunkFileNames: "assets/[name]-[hash].js",
        assetFileNames: "assets/[name]-[hash][extname]",
      },
    },
  },
});
