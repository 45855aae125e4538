#!/usr/bin/env node
// Committed with its execute bit: npm links bins at install time, before `npm run build` exists.
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));
