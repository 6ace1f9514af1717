#!/usr/bin/env node
// The `dropzone` command of the npm package (package.json "bin"): always runs the command line, whatever path
// npm's bin link gives it (src/main.ts runs itself only when it is the program's entry file).
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`dropzone: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
