import {spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {constants as osConstants} from 'node:os'

import {assertPrivate} from '../files/private-path.js'
import {killProcessTree} from './process-tree.js'
import {MAX_PROCEDURE_BYTES, type ProcedureEnvironment, type ProcedureRun} from './procedure-run.js'

const LIBEXEC = fileURLToPath(new URL('../../../../libexec/', import.meta.url))
/** The compiled launcher when the build had a C compiler, else its shell twin (same protocol, slower). */
export const LAUNCHERS = [join(LIBEXEC, 'comet-launcher'), join(LIBEXEC, 'comet-launcher.sh')]
const OUTPUT_LIMIT = 16 * 1024

export interface RunnerOptions {
  /** Where each run's output is captured (owner-only). */
  outputDirectory: string
  /** A hung procedure is killed after this long. */
  timeoutMs: number
  /** Variables for every procedure (COMET_NODE). */
  baseEnvironment: Record<string, string>
  /** Use this launcher instead of the first of LAUNCHERS that exists (tests run both). */
  launcher?: string
}

export interface StartedProcedure {
  run: ProcedureRun
  /** Resolves when the procedure has ended or was killed; never rejects. */
  finished: Promise<ProcedureRun>
}

interface Pending {
  run: ProcedureRun
  output: string
  timer?: NodeJS.Timeout
  resolve: (run: ProcedureRun) => void
  /** The shell launcher's end ("E") can come before its start ("S"): the end then waits a moment for the pid. */
  endedBeforeStart?: {status: number; timer: NodeJS.Timeout}
}

const START_AFTER_END_MS = 1000

/**
 * Starts fencing procedures with /bin/sh -c. Requests go to a small launcher started in advance (libexec/
 * comet-launcher.c, which also keeps a standby shell for the next run, or its twin comet-launcher.sh); if it is
 * not there, the runner spawns directly, which is slower but never fails for want of the launcher.
 */
export class ProcedureRunner {
  private launcher?: ChildProcess
  private readonly cached = new Map<string, {index: number; text: string}>()
  /** Launcher slots only ever grow: a changed procedure gets a new slot, never one another procedure holds. */
  private nextIndex = 0
  private readonly pending = new Map<string, Pending>()
  private buffered = ''
  private prepared = false

  constructor(private readonly options: RunnerOptions) {}

  /** Starts the launcher and hands it the procedures, so that nothing is left to do when a sentinel trips. */
  prepare(procedures: Record<string, string>): void {
    this.prepared = true
    if (!this.launcher) this.startLauncher()
    for (const [name, text] of Object.entries(procedures)) this.cache(name, text)
  }

  start(name: string, text: string, environment: ProcedureEnvironment): StartedProcedure {
    const runId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
    const output = join(this.options.outputDirectory, `${runId}.out`)
    const run: ProcedureRun = {name, runId, startedAt: new Date().toISOString()}
    let resolve!: (run: ProcedureRun) => void
    const finished = new Promise<ProcedureRun>((done) => (resolve = done))
    const pending: Pending = {run, output, resolve}
    this.pending.set(runId, pending)
    const env = {...this.options.baseEnvironment, ...environment}
    if (!this.sendToLauncher(name, text, runId, output, env)) {
      this.spawnDirectly(pending, text, env)
      if (this.prepared && !this.launcher) this.startLauncher()
    }
    pending.timer = setTimeout(() => this.timeOut(runId), this.options.timeoutMs)
    pending.timer.unref()
    return {run, finished}
  }

  /** Runs still going; the agent waits for them (bounded) before it exits, so their end is recorded. */
  get running(): number {
    return this.pending.size
  }

  async drain(maxWaitMs: number): Promise<void> {
    const deadline = Date.now() + maxWaitMs
    while (this.pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  }

  close(): void {
    this.prepared = false
    this.launcher?.stdin?.end()
    this.launcher = undefined
  }

  /** Which launcher runs procedures (for the log and the status), or undefined when spawning directly. */
  get launcherPath(): string | undefined {
    return this.launcher ? this.chosenLauncher : undefined
  }

  private chosenLauncher?: string

  private startLauncher(): void {
    removeStaleStandbyOutputs(this.options.outputDirectory)
    const launcher = this.options.launcher ?? (LAUNCHERS.find((path) => existsSync(path)) as string)
    // It runs every procedure, as root: nobody else may be able to change it.
    assertPrivate(launcher, lstatSync(launcher), 'file')
    const [command, args] = launcher.endsWith('.sh') ? ['/bin/sh', [launcher]] : [launcher, []]
    this.chosenLauncher = launcher
    const child = spawn(command, args, {stdio: ['pipe', 'pipe', 'inherit'], env: {PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...this.options.baseEnvironment}})
    child.stdout!.setEncoding('utf8')
    child.stdout!.on('data', (chunk: string) => this.onLauncherOutput(chunk))
    child.stdin!.on('error', () => this.onLauncherGone(child))
    child.on('exit', () => this.onLauncherGone(child))
    child.unref()
    ;(child.stdout as unknown as {unref?: () => void}).unref?.()
    ;(child.stdin as unknown as {unref?: () => void}).unref?.()
    this.launcher = child
    this.cached.clear()
    this.nextIndex = 0
    // A shell started in advance takes the next run: its exec is then already done (see comet-launcher.c).
    if (!this.options.outputDirectory.includes('\n')) child.stdin!.write(`W\n${this.options.outputDirectory}\n`)
  }

  private onLauncherGone(child: ChildProcess): void {
    if (this.launcher !== child) return
    this.launcher = undefined
    this.cached.clear()
  }

  private cache(name: string, text: string): {index: number; text: string} | undefined {
    const known = this.cached.get(name)
    if (known && known.text === text) return known
    // The launcher reads lines of up to 256 KiB; a text the store and the manifest refuse is spawned directly, where
    // its start fails with its own error instead of ending the launcher.
    if (!this.launcher?.stdin?.writable || Buffer.byteLength(text) > MAX_PROCEDURE_BYTES) return undefined
    const index = this.nextIndex++
    const lines = text.split('\n')
    this.launcher.stdin.write(`P\n${index}\n${lines.length}\n${lines.join('\n')}\n`)
    const entry = {index, text}
    this.cached.set(name, entry)
    return entry
  }

  private sendToLauncher(name: string, text: string, runId: string, output: string, env: Record<string, string>): boolean {
    const entry = this.cache(name, text)
    if (!entry || !this.launcher?.stdin?.writable) return false
    const assignments = Object.entries(env).map(([key, value]) => `${key}=${value}`)
    if (assignments.some((line) => line.includes('\n')) || output.includes('\n')) return false
    this.launcher.stdin.write(`R\n${entry.index}\n${runId}\n${output}\n${assignments.length}\n${assignments.join('\n')}\n`)
    return true
  }

  private spawnDirectly(pending: Pending, text: string, env: Record<string, string>): void {
    let fd: number | undefined
    try {
      fd = openSync(pending.output, 'w', 0o600)
      const child = spawn('/bin/sh', ['-c', text], {stdio: ['ignore', fd, fd], env: {PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env}, detached: true})
      pending.run.pid = child.pid
      child.on('error', (error) => this.finish(pending.run.runId, {error: error.message}))
      child.on('exit', (code, signal) => this.finish(pending.run.runId, {status: code ?? 128 + (signal ? osConstants.signals[signal] : 0)}))
    } catch (error) {
      queueMicrotask(() => this.finish(pending.run.runId, {error: (error as Error).message}))
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }

  private onLauncherOutput(chunk: string): void {
    this.buffered += chunk
    let newline: number
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const [verb, runId, value] = this.buffered.slice(0, newline).split(' ')
      this.buffered = this.buffered.slice(newline + 1)
      const pending = this.pending.get(runId)
      if (!pending) continue
      if (verb === 'S') {
        pending.run.pid = Number(value)
        if (pending.endedBeforeStart) this.finish(runId, {status: pending.endedBeforeStart.status})
      }
      if (verb === 'E') {
        const status = Number(value)
        // comet-launcher.sh replies from two processes (the shell forking the run says S, the run's subshell says E):
        // a quick procedure's E can overtake its S.
        if (pending.run.pid !== undefined) this.finish(runId, {status})
        else {
          const timer = setTimeout(() => this.finish(runId, {status}), START_AFTER_END_MS)
          timer.unref()
          pending.endedBeforeStart = {status, timer}
        }
      }
    }
  }

  private timeOut(runId: string): void {
    const pending = this.pending.get(runId)
    if (!pending) return
    pending.run.timedOut = true
    if (pending.run.pid) killProcessTree(pending.run.pid)
    // The launcher reports the kill as an exit; this covers a procedure whose end can no longer be observed.
    setTimeout(() => this.finish(runId, {status: 128 + osConstants.signals.SIGKILL}), 2000).unref()
  }

  private finish(runId: string, outcome: {status?: number; error?: string}): void {
    const pending = this.pending.get(runId)
    if (!pending) return
    this.pending.delete(runId)
    if (pending.timer) clearTimeout(pending.timer)
    if (pending.endedBeforeStart) clearTimeout(pending.endedBeforeStart.timer)
    const run = pending.run
    run.endedAt = new Date().toISOString()
    if (outcome.error !== undefined) run.error = outcome.error
    if (outcome.status !== undefined) {
      if (outcome.status > 128) {
        run.signal = signalName(outcome.status - 128)
        run.exitCode = outcome.status
      } else run.exitCode = outcome.status
    }
    run.output = readTail(pending.output)
    pending.resolve(run)
  }
}

/**
 * A launcher killed outright leaves its standby shell's (empty) output file behind; one of a launcher that is still
 * running is left alone.
 */
function removeStaleStandbyOutputs(directory: string): void {
  let names: string[]
  try {
    names = readdirSync(directory)
  } catch {
    return
  }
  for (const name of names) {
    const launcherPid = /^standby-(\d+)-\d+\.out$/.exec(name)?.[1]
    if (launcherPid === undefined || isAlive(Number(launcherPid))) continue
    try {
      unlinkSync(join(directory, name))
    } catch {}
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readTail(file: string): string | undefined {
  try {
    const content = readFileSync(file)
    unlinkSync(file)
    return content.length > OUTPUT_LIMIT ? '…' + content.subarray(content.length - OUTPUT_LIMIT).toString('utf8') : content.toString('utf8')
  } catch {
    return undefined
  }
}

function signalName(number: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, value]) => value === number)?.[0]
}
