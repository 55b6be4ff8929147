import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import type {ProcedureRun} from '../../../src/core/fence/procedure-run.js'
import {applyReport, emptyStatus} from '../../../src/core/report/apply-report.js'
import type {Incident, NodeStatus, SentinelCounts, StatusReport} from '../../../src/core/report/node-status.js'

const T = (second: number) => `2030-01-01T00:00:${String(second).padStart(2, '0')}.000Z`

function counts(intact: number, tampered = 0): SentinelCounts {
  return {total: intact + tampered, intact, tampered, unrecorded: 0, unverifiable: 0}
}

function check(second: number, options: Partial<Extract<StatusReport, {type: 'check'}>> = {}): StatusReport {
  return {type: 'check', at: T(second), counts: counts(3), warnings: [], running: 0, ...options}
}

function run(name: string, runId: string, extra: Partial<ProcedureRun> = {}): ProcedureRun {
  return {name, runId, startedAt: T(10), ...extra}
}

function incident(id: string, second: number, procedures: ProcedureRun[]): Incident {
  return {
    id,
    source: 'watch',
    startedAt: T(second),
    sentinels: [{path: '/srv/a', reason: 'modified', detail: 'content changed', procedure: 'isolate', at: T(second)}],
    procedures,
  }
}

function incidentReport(inc: Incident, fencedProcedures: string[], running: number): StatusReport {
  return {type: 'incident', incident: inc, fencedProcedures, running}
}

function fold(...reports: StatusReport[]): NodeStatus {
  return reports.reduce(applyReport, emptyStatus('web01'))
}

describe('applyReport: check reports', () => {
  it('starts from an ok status with nothing counted', () => {
    const status = emptyStatus('web01')
    assert.equal(status.node, 'web01')
    assert.equal(status.state, 'ok')
    assert.equal(status.incidentsTotal, 0)
    assert.deepEqual(status.incidents, [])
  })

  it('sets the counts, the warnings and the heartbeat', () => {
    const status = fold(check(1, {counts: counts(4), warnings: ['/srv/a: mode changed 600 -> 644']}))
    assert.deepEqual(status.sentinels, counts(4))
    assert.deepEqual(status.warnings, ['/srv/a: mode changed 600 -> 644'])
    assert.equal(status.heartbeatAt, T(1))
    assert.equal(status.lastCheckAt, T(1))
    assert.equal(status.state, 'ok')
  })

  it('never moves the heartbeat back for an older report', () => {
    const status = fold(check(5), check(3))
    assert.equal(status.heartbeatAt, T(5))
  })

  it('is tampered when a check counts a tampered sentinel', () => {
    assert.equal(fold(check(1, {counts: counts(2, 1)})).state, 'tampered')
  })

  it('is in error when the check could not be made', () => {
    assert.equal(fold(check(1, {error: true, detail: 'store unreachable'})).state, 'error')
  })

  it('does not change the status it was given', () => {
    const before = fold(check(1))
    const snapshot = structuredClone(before)
    applyReport(before, incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0))
    assert.deepEqual(before, snapshot)
  })
})

describe('applyReport: incident reports', () => {
  it('counts a new incident and records it', () => {
    const status = fold(check(1), incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0))
    assert.equal(status.incidentsTotal, 1)
    assert.deepEqual(
      status.incidents.map((i) => i.id),
      ['inc-1'],
    )
    assert.equal(status.lastIncidentAt, T(2))
  })

  it('counts the same incident once even when it is applied twice', () => {
    const report = incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0)
    const status = fold(check(1), report, report)
    assert.equal(status.incidentsTotal, 1)
    assert.equal(status.incidents.length, 1)
    assert.deepEqual(status.fencingStarted, {isolate: 1})
  })

  it('replaces an incident by its later version (its end recorded)', () => {
    const started = incident('inc-1', 2, [run('isolate', 'r1')])
    const ended = {...incident('inc-1', 2, [run('isolate', 'r1', {exitCode: 0, endedAt: T(3)})]), endedAt: T(3)}
    const status = fold(incidentReport(started, ['isolate'], 1), incidentReport(ended, ['isolate'], 0))
    assert.equal(status.incidentsTotal, 1)
    assert.equal(status.incidents[0].endedAt, T(3))
    assert.equal(status.incidents[0].procedures[0].exitCode, 0)
    assert.deepEqual(status.fencingStarted, {isolate: 1})
  })

  it('counts each procedure run once per runId', () => {
    const first = incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0)
    const updated = incidentReport(incident('inc-1', 2, [run('isolate', 'r1'), run('stop-db', 'r2')]), ['isolate', 'stop-db'], 0)
    const other = incidentReport(incident('inc-2', 4, [run('isolate', 'r3')]), ['isolate', 'stop-db'], 0)
    const status = fold(first, updated, updated, other, other)
    assert.deepEqual(status.fencingStarted, {isolate: 2, 'stop-db': 1})
    assert.equal(status.incidentsTotal, 2)
  })

  it('does not count skipped runs or runs that could not start', () => {
    const status = fold(
      incidentReport(
        incident('inc-1', 2, [run('isolate', '', {skipped: 'already-ran'}), run('stop-db', '', {skipped: 'no-fence'}), run('reboot', 'r9', {error: 'spawn failed'})]),
        [],
        0,
      ),
    )
    assert.deepEqual(status.fencingStarted, {})
    assert.equal(status.incidentsTotal, 1)
  })

  it('is fencing while a procedure runs, fenced once it has ended', () => {
    const inc = incident('inc-1', 2, [run('isolate', 'r1')])
    const running = fold(check(1), incidentReport(inc, ['isolate'], 1))
    assert.equal(running.state, 'fencing')
    const fenced = applyReport(running, incidentReport(inc, ['isolate'], 0))
    assert.equal(fenced.state, 'fenced')
    assert.deepEqual(fenced.fencedProcedures, ['isolate'])
  })

  it('stays fenced through later checks until a reset', () => {
    const status = fold(check(1), incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0), check(5))
    assert.equal(status.state, 'fenced')
  })

  it('is tampered after an incident that fenced nothing (--no-fence), until a later check finds all intact', () => {
    const tampered = fold(check(1), incidentReport(incident('inc-1', 2, [run('isolate', '', {skipped: 'no-fence'})]), [], 0))
    assert.equal(tampered.state, 'tampered')
    assert.equal(applyReport(tampered, check(5)).state, 'ok')
  })

  it('merges fenced procedures, sorted and without duplicates', () => {
    const status = fold(
      incidentReport(incident('inc-1', 2, [run('stop-db', 'r1')]), ['stop-db'], 0),
      incidentReport(incident('inc-2', 3, [run('isolate', 'r2')]), ['isolate', 'stop-db'], 0),
    )
    assert.deepEqual(status.fencedProcedures, ['isolate', 'stop-db'])
  })

  it('keeps the 50 most recent incidents but counts them all', () => {
    const reports = Array.from({length: 55}, (_, n) => incidentReport(incident(`inc-${n}`, 2, [run('isolate', `r${n}`)]), ['isolate'], 0))
    const status = fold(...reports)
    assert.equal(status.incidentsTotal, 55)
    assert.equal(status.incidents.length, 50)
    assert.equal(status.incidents[0].id, 'inc-5')
    assert.equal(status.incidents[49].id, 'inc-54')
  })
})

describe('applyReport: reset reports', () => {
  it('clears the fenced procedures and returns to ok', () => {
    const status = fold(check(1), incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0), {type: 'reset', at: T(6)})
    assert.deepEqual(status.fencedProcedures, [])
    assert.equal(status.state, 'ok')
    assert.match(status.detail ?? '', /reset/)
  })

  it('keeps the incident history and totals', () => {
    const status = fold(incidentReport(incident('inc-1', 2, [run('isolate', 'r1')]), ['isolate'], 0), {type: 'reset', at: T(6)})
    assert.equal(status.incidentsTotal, 1)
    assert.deepEqual(status.fencingStarted, {isolate: 1})
    assert.equal(status.incidents.length, 1)
  })
})
