import {existsSync, mkdirSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import type {ProcedureEnvironment, ProcedureRun} from '../../../src/core/fence/procedure-run.js'
import {LAUNCHERS, ProcedureRunner, type StartedProcedure} from '../../../src/core/fence/procedure-runner.js'
import {tempDir} from '../../support/temp-dir.js'
import {waitFor} from '../../support/fixture.js'

const base = tempDir('comet-runner-')
let counter = 0

function workspace(): {dir: string; runs: string} {
  const dir = join(base, `case-${counter++}`)
  const runs = join(dir, 'runs')
  mkdirSync(runs, {recursive: true, mode: 0o700})
  return {dir, runs}
}

function environment(overrides: Partial<ProcedureEnvironment> = {}): ProcedureEnvironment {
  return {COMET_NODE: 'web01', COMET_SENTINEL: '/srv/share/.~lock.ledger.ods#', COMET_REASON: 'modified', COMET_INCIDENT: 'inc-test-1', ...overrides}
}

/**
 * Waits for a run to end. The launcher is unref'd by design (the agent's own handles keep it alive), so the test
 * holds the event loop open itself while it waits.
 */
async function finished(started: StartedProcedure): Promise<ProcedureRun> {
  const keepAlive = setInterval(() => {}, 1000)
  try {
    return await started.finished
  } finally {
    clearInterval(keepAlive)
  }
}

/** Alive means running: a killed process whose parent is gone may linger as a zombie until something reaps it. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

function readPid(file: string): number {
  const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
  assert.ok(Number.isInteger(pid) && pid > 0, `${file} holds no pid`)
  return pid
}

function envOf(file: string): Map<string, string> {
  return new Map(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  )
}

/** The compiled launcher (built by npm run build with a C compiler, as in CI), its shell twin, and no launcher at all. */
const MODES = [
  {title: 'through the compiled launcher', launcher: LAUNCHERS.find((path) => !path.endsWith('.sh'))},
  {title: 'through the shell launcher', launcher: LAUNCHERS.find((path) => path.endsWith('.sh'))},
  {title: 'spawning directly', launcher: undefined},
]

for (const mode of MODES) {
  describe(`ProcedureRunner ${mode.title}`, () => {
    /** A runner for one test; with a launcher, `procedures` are handed to it in advance, as comet watch does. */
    function runner(runs: string, procedures: Record<string, string>, timeoutMs = 30_000, baseEnvironment: Record<string, string> = {COMET_NODE: 'web01'}): ProcedureRunner {
      const created = new ProcedureRunner({outputDirectory: runs, timeoutMs, baseEnvironment, launcher: mode.launcher})
      if (mode.launcher) {
        created.prepare(procedures)
        assert.equal(created.launcherPath, mode.launcher, 'the launcher under test is the one running procedures')
      } else assert.equal(created.launcherPath, undefined)
      return created
    }

    it('gives the procedure COMET_NODE, COMET_SENTINEL, COMET_REASON and COMET_INCIDENT', async () => {
      const {dir, runs} = workspace()
      const envFile = join(dir, 'env.txt')
      const text = `env > '${envFile}'`
      const procedures = runner(runs, {isolate: text})
      try {
        const run = await finished(procedures.start('isolate', text, environment()))
        assert.equal(run.exitCode, 0, JSON.stringify(run))
        const env = envOf(envFile)
        assert.equal(env.get('COMET_NODE'), 'web01')
        assert.equal(env.get('COMET_SENTINEL'), '/srv/share/.~lock.ledger.ods#')
        assert.equal(env.get('COMET_REASON'), 'modified')
        assert.equal(env.get('COMET_INCIDENT'), 'inc-test-1')
        assert.ok(env.has('PATH'), 'a PATH is set so that commands are found')
      } finally {
        procedures.close()
      }
    })

    it('passes values with spaces, quotes and dollar signs unchanged', async () => {
      const {dir, runs} = workspace()
      const envFile = join(dir, 'env.txt')
      const text = `env > '${envFile}'`
      const procedures = runner(runs, {isolate: text})
      try {
        const sentinel = `/srv/it's a "share"/$HOME \`x\`.ods`
        await finished(procedures.start('isolate', text, environment({COMET_SENTINEL: sentinel})))
        assert.equal(envOf(envFile).get('COMET_SENTINEL'), sentinel)
      } finally {
        procedures.close()
      }
    })

    it("gives the run's own variables precedence over the base environment", async () => {
      const {dir, runs} = workspace()
      const envFile = join(dir, 'env.txt')
      const text = `env > '${envFile}'`
      const procedures = runner(runs, {isolate: text}, 30_000, {COMET_NODE: 'web01', COMET_SITE: 'base'})
      try {
        await finished(procedures.start('isolate', text, environment({COMET_NODE: 'db02', COMET_SITE: 'run'})))
        const env = envOf(envFile)
        assert.equal(env.get('COMET_NODE'), 'db02')
        assert.equal(env.get('COMET_SITE'), 'run')
      } finally {
        procedures.close()
      }
    })

    it('records the output and exit code of the run', async () => {
      const {runs} = workspace()
      const text = 'echo "fencing $COMET_SENTINEL"; echo oops >&2; exit 0'
      const procedures = runner(runs, {isolate: text})
      try {
        const started = procedures.start('isolate', text, environment())
        assert.equal(started.run.name, 'isolate')
        assert.ok(started.run.runId.length > 0)
        const run = await finished(started)
        assert.equal(run.exitCode, 0)
        assert.equal(run.timedOut, undefined)
        assert.match(run.output ?? '', /fencing \/srv\/share\/\.~lock\.ledger\.ods#/)
        assert.match(run.output ?? '', /oops/)
        assert.ok(run.endedAt, 'the end is recorded')
        assert.ok(run.pid && run.pid > 0, 'the pid is recorded')
        assert.deepEqual(readdirSync(runs), [], 'the captured output file is removed once read')
      } finally {
        procedures.close()
      }
    })

    it('records a non-zero exit', async () => {
      const {runs} = workspace()
      const text = 'echo "cannot stop the database"; exit 3'
      const procedures = runner(runs, {'stop-db': text})
      try {
        const run = await finished(procedures.start('stop-db', text, environment()))
        assert.equal(run.exitCode, 3)
        assert.equal(run.signal, undefined)
        assert.match(run.output ?? '', /cannot stop the database/)
      } finally {
        procedures.close()
      }
    })

    it('runs every line of a multi-line procedure', async () => {
      const {dir, runs} = workspace()
      const log = join(dir, 'steps.log')
      const text = [`echo one > '${log}'`, 'false', `echo two >> '${log}'`, '', `  echo "  three" >> '${log}'`, `echo four >> '${log}'`].join('\n')
      const procedures = runner(runs, {isolate: text})
      try {
        const run = await finished(procedures.start('isolate', text, environment()))
        assert.equal(run.exitCode, 0)
        assert.equal(readFileSync(log, 'utf8'), 'one\ntwo\n  three\nfour\n')
      } finally {
        procedures.close()
      }
    })

    it('kills a procedure that outlives its timeout, with everything it started, and records timedOut', async () => {
      const {dir, runs} = workspace()
      const background = join(dir, 'background.pid')
      const foreground = join(dir, 'foreground.pid')
      const text = `sleep 30 & echo $! > '${background}'\nsh -c 'echo $$ > "$1"; exec sleep 30' sh '${foreground}' & wait`
      const procedures = runner(runs, {hang: text}, 500)
      try {
        const run = await finished(procedures.start('hang', text, environment()))
        assert.equal(run.timedOut, true)
        assert.equal(run.signal, 'SIGKILL')
        assert.ok(existsSync(background) && existsSync(foreground), 'the procedure had started its children before the timeout')
        for (const pid of [readPid(background), readPid(foreground)]) await waitFor(`child ${pid} to be killed`, () => !isRunning(pid))
      } finally {
        procedures.close()
      }
    })

    it('runs procedures in parallel and keeps their results apart', async () => {
      const {runs} = workspace()
      const procedures = runner(runs, {a: 'echo A; exit 1', b: 'echo B; exit 2'})
      try {
        const [a, b] = await Promise.all([finished(procedures.start('a', 'echo A; exit 1', environment())), finished(procedures.start('b', 'echo B; exit 2', environment()))])
        assert.deepEqual([a.exitCode, a.output], [1, 'A\n'])
        assert.deepEqual([b.exitCode, b.output], [2, 'B\n'])
        assert.notEqual(a.runId, b.runId)
      } finally {
        procedures.close()
      }
    })

    it('runs the new text of a procedure that changed, even after another procedure is added', async () => {
      const {runs} = workspace()
      const procedures = runner(runs, {a: 'echo A1', b: 'echo B'})
      try {
        assert.equal((await finished(procedures.start('a', 'echo A2', environment()))).output, 'A2\n')
        assert.equal((await finished(procedures.start('c', 'echo C', environment()))).output, 'C\n')
        assert.equal((await finished(procedures.start('a', 'echo A2', environment()))).output, 'A2\n')
        assert.equal((await finished(procedures.start('b', 'echo B', environment()))).output, 'B\n')
      } finally {
        procedures.close()
      }
    })
  })
}
