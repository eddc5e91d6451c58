// Bun (and Node): the package by its name.
import * as pkg from 'imgembed';
import { run } from './sources.mjs';

process.exit((await run(pkg, process.argv[2])) > 0 ? 1 : 0);
