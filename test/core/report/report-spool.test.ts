import {chmodSync, existsSync, mkdirSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {UnsafePathError} from '../../../src/core/errors/index.js'
import type {StatusReport} from '../../../src/core/report/node-status.js'
import {ReportSpool} from '../../../src/core/report/report-spool.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-spool-')
let counter = 0

function spoolDir(): string {
  const directory = join(base, `case-${counter++}`)
  mkdirSync(directory, {mode: 0o700})
  return join(directory, 'spool')
}

const atOf = (n: number) => `2030-01-01T00:00:${String(n).padStart(2, '0')}.000Z`

function reset(n: number): StatusReport {
  return {type: 'reset', at: atOf(n)}
}

const ats = (spool: ReportSpool) => spool.pending().map(({report}) => (report as {at: string}).at)

describe('ReportSpool', () => {
  it('is empty, with depth 0, before its directory exists, and creates nothing by reading', () => {
    const directory = spoolDir()
    const spool = new ReportSpool(directory)
    assert.deepEqual(spool.pending(), [])
    assert.equal(spool.depth, 0)
    assert.equal(existsSync(directory), false)
  })

  it('returns the reports it was given, oldest first', () => {
    const spool = new ReportSpool(spoolDir())
    for (let n = 0; n < 12; n++) spool.add(reset(n))
    assert.deepEqual(ats(spool), Array.from({length: 12}, (_, n) => atOf(n)))
    assert.equal(spool.depth, 12)
  })

  it('returns each report with the id add() gave it, and keeps its content', () => {
    const spool = new ReportSpool(spoolDir())
    const report: StatusReport = {type: 'check', at: '2030-01-01T00:00:00.000Z', counts: {total: 3, intact: 2, tampered: 1, unrecorded: 0, unverifiable: 0}, warnings: ['w'], running: 0}
    const id = spool.add(report)
    assert.deepEqual(spool.pending(), [{id, report}])
  })

  it('removes a delivered report and keeps the others in order', () => {
    const spool = new ReportSpool(spoolDir())
    const ids = [0, 1, 2].map((n) => spool.add(reset(n)))
    spool.remove(ids[1])
    assert.deepEqual(ats(spool), [atOf(0), atOf(2)])
    assert.equal(spool.depth, 2)
  })

  it('ignores the removal of a report that is already gone', () => {
    const spool = new ReportSpool(spoolDir())
    const id = spool.add(reset(0))
    spool.remove(id)
    spool.remove(id)
    assert.equal(spool.depth, 0)
  })

  it('keeps pending reports for a new instance on the same directory (a restart)', async () => {
    const directory = spoolDir()
    const before = new ReportSpool(directory)
    before.add(reset(0))
    before.add(reset(1))
    const after = new ReportSpool(directory)
    assert.deepEqual(ats(after), [atOf(0), atOf(1)])
    // A restart takes longer than a millisecond: let the clock move on before the new process spools.
    await sleep(5)
    after.add(reset(2))
    after.remove(after.pending()[0].id)
    assert.deepEqual(ats(new ReportSpool(directory)), [atOf(1), atOf(2)])
  })

  it('writes its directory 0700 and each report 0600, leaving no temporary file', () => {
    const directory = spoolDir()
    const spool = new ReportSpool(directory)
    spool.add(reset(0))
    spool.add(reset(1))
    assert.equal(statSync(directory).mode & 0o7777, 0o700)
    const names = readdirSync(directory)
    assert.equal(names.length, 2)
    for (const name of names) {
      assert.match(name, /\.json$/)
      assert.equal(statSync(join(directory, name)).mode & 0o7777, 0o600)
    }
  })

  it('refuses a report file that others could have written', () => {
    const directory = spoolDir()
    const spool = new ReportSpool(directory)
    const id = spool.add(reset(0))
    chmodSync(join(directory, `${id}.json`), 0o666)
    assert.throws(() => spool.pending(), UnsafePathError)
  })
})
