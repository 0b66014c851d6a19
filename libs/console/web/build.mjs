// Builds the console into dist/ (what the goose-console crate embeds). `--check` builds in
// memory and fails if dist/ differs from what the sources give (the tests run it).
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const check = process.argv.includes("--check");
const here = new URL(".", import.meta.url).pathname;

const result = await esbuild.build({
  entryPoints: [here + "src/main.tsx"],
  bundle: true,
  format: "esm",
  target: ["chrome120", "firefox120", "safari17"],
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  write: false,
  outfile: here + "dist/app.js",
  logLevel: "warning",
});

const outputs = new Map([
  ["app.js", result.outputFiles[0].contents],
  ["index.html", readFileSync(here + "src/index.html")],
  ["app.css", readFileSync(here + "src/app.css")],
]);

let stale = [];
for (const [name, bytes] of outputs) {
  const path = here + "dist/" + name;
  if (check) {
    let current;
    try {
      current = readFileSync(path);
    } catch {
      current = Buffer.alloc(0);
    }
    if (Buffer.compare(current, Buffer.from(bytes)) !== 0) stale.push(name);
  } else {
    mkdirSync(here + "dist", { recursive: true });
    writeFileSync(path, bytes);
  }
}
if (stale.length > 0) {
  console.error(`dist/ is stale (${stale.join(", ")}): run \`npm run build\` in libs/console/web and commit dist/`);
  process.exit(1);
}
