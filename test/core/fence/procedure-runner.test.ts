import {existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync} from 'node:fs'
import {basename, join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import type {ProcedureEnvironment, ProcedureRun} from '../../../src/core/fence/procedure-run.js'
import {childrenByParent} from '../../../src/core/fence/process-tree.js'
import {LAUNCHERS, ProcedureRunner, type StartedProcedure} from '../../../src/core/fence/procedure-runner.js'
import {MAX_PROCEDURE_BYTES} from '../../../src/core/fence/procedure-run.js'
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

/** The runs' output files, without the standby shell's own (see the compiled launcher's tests below). */
function outputFiles(runs: string): string[] {
  return readdirSync(runs).filter((name) => !name.startsWith('standby-'))
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
        assert.deepEqual(outputFiles(runs), [], 'the captured output file is removed once read')
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

    it('ends the producer of a pipe whose reader has gone with SIGPIPE, as under sh -c', async () => {
      const {dir, runs} = workspace()
      const status = join(dir, 'status.txt')
      const text = `(yes; echo "producer: $?" > '${status}') | head -n 1 > /dev/null`
      const procedures = runner(runs, {pipe: text})
      try {
        const run = await finished(procedures.start('pipe', text, environment()))
        assert.equal(run.exitCode, 0, run.output)
        assert.equal(readFileSync(status, 'utf8'), 'producer: 141\n', 'yes was killed by SIGPIPE (128 + 13), not left to fail on EPIPE')
        assert.doesNotMatch(run.output ?? '', /Broken pipe/)
      } finally {
        procedures.close()
      }
    })

    it('runs a procedure of the largest size a manifest or the store accepts', async () => {
      const {dir, runs} = workspace()
      const ran = join(dir, 'ran.txt')
      const head = `echo ran > '${ran}'\n# `
      const text = head + 'x'.repeat(MAX_PROCEDURE_BYTES - Buffer.byteLength(head))
      assert.equal(Buffer.byteLength(text), MAX_PROCEDURE_BYTES)
      const procedures = runner(runs, {big: text})
      try {
        const run = await finished(procedures.start('big', text, environment()))
        assert.equal(run.exitCode, 0, run.output)
        assert.equal(readFileSync(ran, 'utf8'), 'ran\n')
      } finally {
        procedures.close()
      }
    })

    it('records why a procedure too long to run did not start, and runs the next one', async () => {
      const {runs} = workspace()
      const tooLong = `# ${'x'.repeat(MAX_PROCEDURE_BYTES)}`
      const procedures = runner(runs, {small: 'echo small'})
      try {
        const refused = await finished(procedures.start('big', tooLong, environment()))
        assert.equal(refused.exitCode === 0, false, JSON.stringify({...refused, output: undefined}))
        assert.match(`${refused.error ?? ''}${refused.output ?? ''}`, /E2BIG|too long/)
        const next = await finished(procedures.start('small', 'echo small', environment()))
        assert.deepEqual([next.exitCode, next.output], [0, 'small\n'])
        if (mode.launcher) assert.equal(procedures.launcherPath, mode.launcher, 'the launcher is still there')
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

/** The compiled launcher's standby shell: a /bin/sh started in advance that takes the next run. */
describe('ProcedureRunner: the standby shell of the compiled launcher', () => {
  const launcher = LAUNCHERS.find((path) => !path.endsWith('.sh'))

  function runner(runs: string, procedures: Record<string, string>, timeoutMs = 30_000): ProcedureRunner {
    const created = new ProcedureRunner({outputDirectory: runs, timeoutMs, baseEnvironment: {COMET_NODE: 'web01'}, launcher})
    created.prepare(procedures)
    return created
  }

  /** Waits for the standby shell the launcher keeps in `runs`, and returns its pid and output file. */
  async function standby(runs: string, not?: number): Promise<{pid: number; output: string}> {
    let found: {pid: number; output: string} | undefined
    await waitFor('the standby shell', () => {
      for (const name of readdirSync(runs).filter((entry) => /^standby-\d+-\d+\.out$/.test(entry))) {
        const launcherPid = Number(name.split('-')[1])
        const pid = (childrenByParent().get(launcherPid) ?? []).find((child) => child !== not && commandLine(child) === 'sh\0-c\0. /dev/fd/3\0')
        if (pid) found = {pid, output: join(runs, name)}
      }
      return found !== undefined
    })
    return found!
  }

  /** A process's command line, or '' once it is gone. */
  function commandLine(pid: number): string {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      return ''
    }
  }


  it('is started in advance, owner-only, and takes the next run with its variables, output and exit code', async () => {
    const {dir, runs} = workspace()
    const envFile = join(dir, 'env.txt')
    const text = `env > '${envFile}'\necho "fencing $COMET_SENTINEL"\nexit 4`
    const procedures = runner(runs, {isolate: text})
    try {
      const shell = await standby(runs)
      assert.equal(statSync(shell.output).mode & 0o777, 0o600, 'its output file is owner-only')
      const sentinel = `/srv/it's a "share"/$HOME \`x\`.ods`
      const run = await finished(procedures.start('isolate', text, environment({COMET_SENTINEL: sentinel})))
      assert.equal(run.pid, shell.pid, 'the shell started in advance ran the procedure')
      assert.equal(run.exitCode, 4)
      assert.equal(run.output, `fencing ${sentinel}\n`)
      const env = envOf(envFile)
      assert.equal(env.get('COMET_SENTINEL'), sentinel, 'a value is passed unchanged: nothing in it is expanded')
      assert.equal(env.get('COMET_NODE'), 'web01')
      assert.equal(env.get('COMET_INCIDENT'), 'inc-test-1')
      assert.ok(env.has('PATH'))
      assert.equal(existsSync(shell.output), false, 'the output file was handed to the run, and removed once read')
    } finally {
      procedures.close()
    }
  })

  it('gives the procedure /dev/null as stdin, and no descriptor of the pipe its script came through', async () => {
    const {dir, runs} = workspace()
    const report = join(dir, 'report.txt')
    // cat would read the rest of the script if the script came on stdin; python lists what a command started by
    // the procedure inherits.
    const text = [
      `cat > '${report}'`,
      `echo "stdin: $(readlink /proc/self/fd/0)" >> '${report}'`,
      `python3 -c 'import os\nfor fd in range(3, 1024):\n    try:\n        print("inherited:", os.readlink(f"/proc/self/fd/{fd}"))\n    except OSError:\n        pass\nprint("listed")' >> '${report}'`,
      `echo "after" >> '${report}'`,
    ].join('\n')
    const procedures = runner(runs, {isolate: text})
    try {
      const shell = await standby(runs)
      const scriptPipe = readlinkSync(`/proc/${shell.pid}/fd/3`)
      assert.match(scriptPipe, /^pipe:/)
      const run = await finished(procedures.start('isolate', text, environment()))
      assert.equal(run.pid, shell.pid)
      assert.equal(run.exitCode, 0, run.output)
      const lines = readFileSync(report, 'utf8').split('\n')
      assert.deepEqual([lines[0], lines.at(-3), lines.at(-2)], ['stdin: /dev/null', 'listed', 'after'], lines.join('\n'))
      assert.ok(!lines.includes(`inherited: ${scriptPipe}`), `the procedure's commands inherited the script's pipe: ${lines.join('\n')}`)
    } finally {
      procedures.close()
    }
  })

  it('is replaced after a run, and a burst of runs starts the others the usual way', async () => {
    const {runs} = workspace()
    const procedures = runner(runs, {a: 'echo A; exit 1', b: 'echo B; exit 2', c: 'echo C'})
    try {
      const first = await standby(runs)
      const [a, b] = await Promise.all([finished(procedures.start('a', 'echo A; exit 1', environment())), finished(procedures.start('b', 'echo B; exit 2', environment()))])
      assert.deepEqual([a.exitCode, a.output, b.exitCode, b.output], [1, 'A\n', 2, 'B\n'])
      assert.equal(a.pid, first.pid, 'the first run of the burst took the standby shell')
      assert.notEqual(b.pid, first.pid)
      const second = await standby(runs, first.pid)
      const c = await finished(procedures.start('c', 'echo C', environment()))
      assert.deepEqual([c.pid, c.output], [second.pid, 'C\n'], 'a new standby shell took the next run')
    } finally {
      procedures.close()
    }
  })

  it('runs the procedure the usual way when the standby shell was killed before it', async () => {
    const {runs} = workspace()
    const procedures = runner(runs, {a: 'echo A'})
    try {
      const shell = await standby(runs)
      process.kill(shell.pid, 'SIGKILL')
      await waitFor('the killed standby shell to be reaped', () => !existsSync(shell.output))
      const run = await finished(procedures.start('a', 'echo A', environment()))
      assert.notEqual(run.pid, shell.pid)
      assert.deepEqual([run.exitCode, run.output], [0, 'A\n'])
    } finally {
      procedures.close()
    }
  })

  it('ends the producer of a pipe whose reader has gone with SIGPIPE, in the standby shell and without it', async () => {
    const {dir, runs} = workspace()
    const pipeline = (file: string) => `(yes; echo "producer: $?" > '${join(dir, file)}') | head -n 1 > /dev/null`
    const procedures = runner(runs, {a: pipeline('a.txt'), b: pipeline('b.txt')})
    try {
      const shell = await standby(runs)
      const [a, b] = await Promise.all([finished(procedures.start('a', pipeline('a.txt'), environment())), finished(procedures.start('b', pipeline('b.txt'), environment()))])
      assert.deepEqual([a.pid === shell.pid, b.pid === shell.pid], [true, false], 'one run in the standby shell, the other started with vfork')
      assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'producer: 141\n')
      assert.equal(readFileSync(join(dir, 'b.txt'), 'utf8'), 'producer: 141\n')
    } finally {
      procedures.close()
    }
  })

  it('runs a procedure larger than its pipe once, without the standby shell', async () => {
    const {dir, runs} = workspace()
    const count = join(dir, 'count.txt')
    // About 94 KiB: more than the pipe takes (64 KiB), less than one argument may be (128 KiB). The standby shell
    // would run the first lines while the launcher still waits to write the rest.
    const text = [`echo ran >> '${count}'`, 'exit 0', ...Array.from({length: 1200}, (_, line) => `# padding line ${line} ${'x'.repeat(60)}`)].join('\n')
    const procedures = runner(runs, {big: text})
    try {
      const shell = await standby(runs)
      const run = await finished(procedures.start('big', text, environment()))
      assert.equal(run.exitCode, 0, run.output)
      assert.notEqual(run.pid, shell.pid)
      assert.equal(readFileSync(count, 'utf8'), 'ran\n', 'the procedure ran exactly once')
    } finally {
      procedures.close()
    }
  })

  it('is killed with everything the procedure started when the run outlives its timeout', async () => {
    const {dir, runs} = workspace()
    const background = join(dir, 'background.pid')
    const text = `sleep 30 & echo $! > '${background}'\nwait`
    const procedures = runner(runs, {hang: text}, 500)
    try {
      const shell = await standby(runs)
      const run = await finished(procedures.start('hang', text, environment()))
      assert.equal(run.pid, shell.pid)
      assert.deepEqual([run.timedOut, run.signal], [true, 'SIGKILL'])
      await waitFor('the background child to be killed', () => !isRunning(readPid(background)))
    } finally {
      procedures.close()
    }
  })

  it("removes the output file a killed launcher's standby shell left, and only that one", async () => {
    const {runs} = workspace()
    // No process has the pid pid_max: pids stay below it.
    const gone = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
    writeFileSync(join(runs, `standby-${gone}-0.out`), '', {mode: 0o600})
    writeFileSync(join(runs, `standby-${process.pid}-0.out`), '', {mode: 0o600})
    const procedures = runner(runs, {a: 'echo A'})
    try {
      const shell = await standby(runs)
      assert.deepEqual(readdirSync(runs).sort(), [basename(shell.output), `standby-${process.pid}-0.out`].sort())
    } finally {
      procedures.close()
    }
  })

  it('ends, with its output file removed, when the agent closes the launcher', async () => {
    const {runs} = workspace()
    const procedures = runner(runs, {a: 'echo A'})
    const shell = await standby(runs)
    procedures.close()
    await waitFor('the standby shell to end', () => !isRunning(shell.pid))
    assert.deepEqual(readdirSync(runs), [])
  })
})

describe('ProcedureRunner: the replies of a launcher', () => {
  it("records the pid of a run whose end overtook its start (the shell launcher's two writers)", async () => {
    const {dir, runs} = workspace()
    // Replies E before S for every run, as comet-launcher.sh can for a quick procedure.
    const launcher = join(dir, 'overtaking-launcher.sh')
    writeFileSync(
      launcher,
      [
        'skip() { n=0; while [ "$n" -lt "$1" ]; do IFS= read -r line; n=$((n + 1)); done; }',
        'while IFS= read -r verb; do',
        '  case $verb in',
        '    P) read -r index; read -r count; skip "$count" ;;',
        '    W) read -r directory ;;',
        '    R) read -r index; read -r run; read -r output; read -r count; skip "$count"; echo "E $run 3"; sleep 0.2; echo "S $run 4242" ;;',
        '  esac',
        'done',
      ].join('\n') + '\n',
      {mode: 0o700},
    )
    const procedures = new ProcedureRunner({outputDirectory: runs, timeoutMs: 30_000, baseEnvironment: {COMET_NODE: 'web01'}, launcher})
    procedures.prepare({a: 'echo A'})
    try {
      const run = await finished(procedures.start('a', 'echo A', environment()))
      assert.deepEqual([run.pid, run.exitCode], [4242, 3])
    } finally {
      procedures.close()
    }
  })
})
