// The DuckDB side of tests/bench/bench_duckdb.lua: node run.mjs PREFIX JOB.json
// PREFIX is the folder npm installed @duckdb/node-api into; JOB.json says
//   { "threads": n, "setup": [sql, ...], "timed": [{ "name": s, "sql": s, "runs": n, "before": [sql, ...] }] }
// Runs the setup, then each timed statement `runs` times (its `before` statements untimed before each run),
// and prints one JSON line { name: least seconds, ... }: the time inside DuckDB, not node's start.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [prefix, jobPath] = process.argv.slice(2);
const require = createRequire(resolve(prefix, 'package.json'));
const { DuckDBInstance } = await import(pathToFileURL(require.resolve('@duckdb/node-api')).href);
const job = JSON.parse(readFileSync(jobPath, 'utf8'));
const instance = await DuckDBInstance.create(':memory:', { threads: String(job.threads || 1) });
const con = await instance.connect();
for (const sql of job.setup || []) await con.run(sql);
const out = {};
for (const t of job.timed || []) {
  let best = Infinity;
  for (let i = 0; i < (t.runs || 1); i++) {
    for (const sql of t.before || []) await con.run(sql);
    const t0 = process.hrtime.bigint();
    await con.run(t.sql);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  out[t.name] = best;
}
console.log(JSON.stringify(out));
