import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after} from 'node:test'

/** A private temporary folder for one test file, removed when the file's tests end. */
export function tempDir(prefix = 'comet-test-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix))
  after(() => rmSync(directory, {recursive: true, force: true}))
  return directory
}
