import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { runIfEntryPoint } from '@titanbot/service-kit/process';

/** The frontend's sources (Preact, TypeScript) and its tsconfig. */
const WEB_SOURCES = fileURLToPath(new URL('../web/', import.meta.url));
/** Where `npm run build` puts the built frontend, and where `main.ts` serves it from. */
export const BUILT_WEB_DIR = fileURLToPath(new URL('../dist/web/', import.meta.url));

/** One built file and its size (bytes, and gzip-compressed as served over a compressing proxy). */
export interface BuiltFile {
  path: string;
  bytes: number;
  gzipBytes: number;
}

/**
 * Builds the frontend with esbuild into `outDir`: `assets/app-<hash>.js` and `.css` (bundled,
 * minified, content-named so they can be cached for ever) and `index.html` naming them. Nothing is
 * fetched at run time from anywhere but the console. Returns the JavaScript and CSS files with
 * their sizes. Throws with esbuild's messages when the sources do not build.
 */
export async function buildWeb(outDir: string): Promise<BuiltFile[]> {
  await rm(outDir, { recursive: true, force: true });
  const assets = path.join(outDir, 'assets');
  await mkdir(assets, { recursive: true });
  const result = await build({
    entryPoints: { app: path.join(WEB_SOURCES, 'main.tsx') },
    tsconfig: path.join(WEB_SOURCES, 'tsconfig.json'),
    outdir: assets,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.resolve(file));
  const named = (ext: string): string => path.basename(outputs.find((f) => f.endsWith(ext))!);
  await writeFile(
    path.join(outDir, 'index.html'),
    '<!DOCTYPE html><html lang="en" data-theme="light"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
      `<title>Titanbot console</title><link rel="stylesheet" href="/assets/${named('.css')}"><script type="module" src="/assets/${named('.js')}"></script></head>` +
      '<body><div id="app"></div></body></html>',
  );
  return Promise.all(
    outputs.map(async (file) => {
      const bytes = await readFile(file);
      return { path: path.relative(outDir, file), bytes: bytes.length, gzipBytes: gzipSync(bytes).length };
    }),
  );
}

runIfEntryPoint(import.meta.url, async () => {
  const files = await buildWeb(BUILT_WEB_DIR);
  for (const f of files) process.stdout.write(`console frontend: ${f.path} ${f.bytes} B (${f.gzipBytes} B gzip)\n`);
});
