#!/usr/bin/env node
// `tranche serve|worker|migrate` without a build step: tsx's loader is registered in this very
// process and the TypeScript entry point imported after it. No child process stands between the
// caller and the server, so SIGTERM and SIGINT reach main.ts's shutdown, and its exit status is
// this process's.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

const here = dirname(fileURLToPath(import.meta.url));
register();
await import(pathToFileURL(join(here, '..', 'src', 'main.ts')).href);
