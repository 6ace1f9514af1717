import { createRequire } from 'node:module';

/** Set by the single-executable build (build.mjs) to package.json's version; absent when running from source or lib/. */
declare const __DROPZONE_VERSION__: string | undefined;

/**
 * The program's version: `version` of package.json, the one place it is written. From source (`src/`) and from the
 * compiled package (`lib/`) the file is one directory up; the executable has it compiled in.
 */
export const VERSION: string =
  typeof __DROPZONE_VERSION__ === 'string' ? __DROPZONE_VERSION__ : (createRequire(import.meta.url)('../package.json') as { version: string }).version;
