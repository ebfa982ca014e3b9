// The repository's Dockerfile, checked by a linter (dockerfile-utils, the validator of the
// Docker language server; there is no Docker engine here to build it). A broken Dockerfile is
// linted too, to show the linter rejects what it should.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const lint = join(here, 'node_modules', '.bin', 'dockerfile-utils');

test('the Dockerfile passes the linter', () => {
  const out = execFileSync(lint, ['lint', join(here, '..', '..', 'Dockerfile')], { encoding: 'utf8' });
  assert.equal(out.trim(), '', `no findings expected:\n${out}`);
});

test('the linter rejects a broken Dockerfile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'huddle-dockerfile-'));
  const bad = join(dir, 'Dockerfile');
  writeFileSync(bad, 'FROM debian:12\nCOPYX . /app\nEXPOSE\n');
  const r = spawnSync(lint, ['lint', bad], { encoding: 'utf8' });
  assert.notEqual(r.status, 0, 'a broken Dockerfile fails');
  assert.match(r.stdout + r.stderr, /Unknown instruction: COPYX/);
});
