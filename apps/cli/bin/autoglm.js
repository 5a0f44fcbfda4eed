#!/usr/bin/env node
// The installed `autoglm` command. A committed shim, so npm can link it at install time, before
// the TypeScript build has produced dist/ (in this repository `npm ci` builds in its prepare step).
import '../dist/main.js';
