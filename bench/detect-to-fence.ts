/**
 * Detection-to-fence latency: append to a sentinel, and measure the time until its procedure's first instruction
 * runs (monostamp, CLOCK_MONOTONIC, written to a FIFO the bench reads without polling). Baseline in the same
 * run: `inotifywait -m` piped to a shell loop that runs the same procedure with sh -c, the floor any
 * inotify-based tripwire stands on. Both run at once, each in its own session as a service would, and the trials
 * alternate between them.
 */
import {execFileSync, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {appendFileSync, mkdtempSync, openSync, rmSync, writeFileSync} from 'node:fs'
import {Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {monostamp, percentile, round, RUN_JS, sleep, waitFor} from './support.js'

export interface LatencyFigures {
  trials: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface DetectToFenceResult {
  comet: LatencyFigures
  baseline: LatencyFigures
  p50Ratio: number
  p99Ratio: number
  targets: {p50RatioMax: number; p50MsMax: number; p99MsMax: number; met: boolean}
}

const GAP_MS = 15

export async function benchDetectToFence(trials = 200): Promise<DetectToFenceResult> {
  const stamp = monostamp()
  const root = mkdtempSync(join(tmpdir(), 'comet-bench-'))
  let baselineRun: Watcher | undefined
  let cometRun: Watcher | undefined
  try {
    // Both run at once, each on its own directory, and the trials alternate between them: a noisy moment on a
    // shared machine then falls on both, rather than on whichever happened to be measured at the time.
    baselineRun = await startBaseline(root, stamp, trials)
    cometRun = await startComet(root, stamp, trials)
    const baselineLatencies: number[] = []
    const cometLatencies: number[] = []
    for (let index = 0; index < trials; index++) {
      baselineLatencies.push(await touch(baselineRun.sentinels[index], baselineRun.stamps))
      cometLatencies.push(await touch(cometRun.sentinels[index], cometRun.stamps))
    }
    const baseline = figures(baselineLatencies)
    const comet = figures(cometLatencies)
    const p50Ratio = round(comet.p50Ms / baseline.p50Ms, 2)
    const p99Ratio = round(comet.p99Ms / baseline.p99Ms, 2)
    return {comet, baseline, p50Ratio, p99Ratio, targets: {p50RatioMax: 1.2, p50MsMax: 3, p99MsMax: 10, met: p50Ratio <= 1.2 && comet.p50Ms <= 3 && comet.p99Ms <= 10}}
  } finally {
    baselineRun?.stop()
    cometRun?.stop()
    rmSync(root, {recursive: true, force: true})
  }
}

/** A watcher under test: its sentinels, the stamps its procedure writes, and how to stop it. */
interface Watcher {
  sentinels: string[]
  stamps: StampReader
  stop: () => void
}

/**
 * The procedures' stamps, read from a FIFO as they come (epoll, no polling): a bench that polled a file every
 * millisecond would compete for the CPU with what it measures.
 */
class StampReader {
  private readonly socket: Socket
  private buffered = ''
  private readonly waiting = new Map<string, (stamp: bigint) => void>()
  private readonly early = new Map<string, bigint>()

  constructor(readonly fifo: string) {
    execFileSync('mkfifo', ['-m', '600', fifo])
    // Read-write, so that the FIFO never reads end-of-file between two procedures.
    this.socket = new Socket({fd: openSync(fifo, 'r+'), readable: true, writable: false})
    this.socket.setEncoding('utf8')
    this.socket.on('data', (chunk: string) => {
      this.buffered += chunk
      let newline
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        const [sentinel, stamp] = this.buffered.slice(0, newline).split(' ')
        this.buffered = this.buffered.slice(newline + 1)
        const resolve = this.waiting.get(sentinel)
        if (resolve) {
          this.waiting.delete(sentinel)
          resolve(BigInt(stamp))
        } else this.early.set(sentinel, BigInt(stamp))
      }
    })
  }

  next(sentinel: string, timeoutMs = 15_000): Promise<bigint> {
    const early = this.early.get(sentinel)
    if (early !== undefined) {
      this.early.delete(sentinel)
      return Promise.resolve(early)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for the procedure for ${sentinel}`)), timeoutMs)
      this.waiting.set(sentinel, (stamp) => {
        clearTimeout(timer)
        resolve(stamp)
      })
    })
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Appends to a sentinel and waits for the procedure's stamp for it: milliseconds from the append to the stamp. */
async function touch(sentinel: string, stamps: StampReader): Promise<number> {
  const stamped = stamps.next(sentinel)
  const before = process.hrtime.bigint()
  appendFileSync(sentinel, 'x')
  const latency = Number((await stamped) - before) / 1e6
  await sleep(GAP_MS)
  return latency
}

function figures(latencies: number[]): LatencyFigures {
  return {trials: latencies.length, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(Math.max(...latencies))}
}

/** inotifywait -m piped to a shell loop that runs the same procedure with sh -c, in its own session. */
async function startBaseline(root: string, stamp: string, trials: number): Promise<Watcher> {
  if (spawnSync('inotifywait', ['--help']).error) throw new Error('inotifywait is missing: apt-get install inotify-tools')
  const directory = join(root, 'baseline')
  spawnSync('mkdir', ['-p', directory])
  const sentinels = Array.from({length: trials}, (_, index) => join(directory, `sentinel-${index}.dat`))
  for (const sentinel of sentinels) writeFileSync(sentinel, 'sentinel')
  const stamps = new StampReader(join(root, 'baseline.fifo'))
  const procedure = `${stamp} "$F" >> ${stamps.fifo}`
  const loop = `inotifywait -m -q -e modify --format '%w%f' ${directory} | while IFS= read -r F; do F="$F" sh -c '${procedure.replace(/'/g, `'\\''`)}'; done`
  const child = spawn('sh', ['-c', `export F; ${loop}`], {stdio: ['ignore', 'ignore', 'pipe'], detached: true})
  await sleep(500)
  return {
    sentinels,
    stamps,
    stop: () => {
      stop(child)
      stamps.close()
    },
  }
}

/**
 * `comet watch` on `trials` sentinels, one procedure each (a procedure runs once until comet reset), in its own
 * session as under systemd. `initEnv` is the environment of `comet init`, `watchEnv` that of `comet watch` (the
 * Vault benchmark points the agent at a black hole after init).
 */
async function startComet(root: string, stamp: string, trials: number, initEnv: NodeJS.ProcessEnv = {}, watchEnv: NodeJS.ProcessEnv = initEnv): Promise<Watcher> {
  const directory = join(root, 'comet')
  spawnSync('mkdir', ['-p', directory])
  const sentinels = Array.from({length: trials}, (_, index) => join(directory, `sentinel-${index}.dat`))
  const stamps = new StampReader(join(root, 'comet.fifo'))
  // No node: in the manifest: COMET_NODE names it, so that two runs can share one store.
  const manifest = [
    'sentinels:',
    ...sentinels.flatMap((sentinel, index) => [`  - path: ${sentinel}`, '    create: true', `    fencing: p${index}`]),
    'fencing:',
    ...sentinels.map((_, index) => `  p${index}: ${JSON.stringify(`${stamp} "$COMET_SENTINEL" >> ${stamps.fifo}`)}`),
  ].join('\n')
  writeFileSync(join(root, 'manifest.yaml'), manifest)
  const env = {...process.env, COMET_STORE: `file:${join(root, 'store')}`, COMET_STATE_DIR: join(root, 'state'), COMET_NODE: 'bench'}
  const init = spawnSync(process.execPath, [RUN_JS, 'init', '--manifest', join(root, 'manifest.yaml'), '--json'], {env: {...env, ...initEnv}, encoding: 'utf8'})
  if (init.status !== 0) throw new Error(`comet init failed: ${init.stderr}${init.stdout.slice(0, 2000)}`)
  const child = spawn(process.execPath, [RUN_JS, 'watch', '--interval', '3600', '--no-fanotify'], {env: {...env, ...watchEnv}, stdio: ['ignore', 'ignore', 'pipe'], detached: true})
  let log = ''
  child.stderr!.on('data', (chunk) => (log += chunk))
  const stopAll = () => {
    stop(child)
    stamps.close()
  }
  try {
    await waitFor('comet watch to start', () => log.includes('watching'), 60_000)
  } catch (error) {
    stopAll()
    throw error
  }
  await sleep(300)
  return {sentinels, stamps, stop: stopAll}
}

/** comet watch alone, trial after trial (the Vault benchmark compares two of these). */
export async function measureComet(root: string, stamp: string, trials: number, initEnv: NodeJS.ProcessEnv = {}, watchEnv: NodeJS.ProcessEnv = initEnv): Promise<LatencyFigures> {
  const run = await startComet(root, stamp, trials, initEnv, watchEnv)
  try {
    const latencies: number[] = []
    for (const sentinel of run.sentinels) latencies.push(await touch(sentinel, run.stamps))
    return figures(latencies)
  } finally {
    run.stop()
  }
}

function stop(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGTERM')
  } catch {
    child.kill('SIGTERM')
  }
}
