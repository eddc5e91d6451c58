// Deno: the package as an npm: specifier (resolved from node_modules).
import * as pkg from 'npm:imgembed';
import { run } from './sources.mjs';

Deno.exit((await run(pkg, Deno.args[0])) > 0 ? 1 : 0);
