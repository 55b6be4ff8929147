/**
 * Detection-to-fence latency: append to a sentinel, and measure the time until its procedure's first instruction
 * runs (monostamp, CLOCK_MONOTONIC). Baseline in the same run: `inotifywait -m` piped to a shell loop that
 * runs the same procedure with sh -c, the floor any inotify-based tripwire stands on.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
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
  try {
    const baseline = await measureBaseline(root, stamp, trials)
    const comet = await measureComet(root, stamp, trials)
    const p50Ratio = round(comet.p50Ms / baseline.p50Ms, 2)
    const p99Ratio = round(comet.p99Ms / baseline.p99Ms, 2)
    return {comet, baseline, p50Ratio, p99Ratio, targets: {p50RatioMax: 1.2, p50MsMax: 3, p99MsMax: 10, met: p50Ratio <= 1.2 && comet.p50Ms <= 3 && comet.p99Ms <= 10}}
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
}

/** Appends to each sentinel in turn and reads the procedure's stamp for it. */
async function trial(sentinels: string[], stamps: string): Promise<LatencyFigures> {
  const latencies: number[] = []
  for (const sentinel of sentinels) {
    const before = process.hrtime.bigint()
    appendFileSync(sentinel, 'x')
    let stamped: bigint | undefined
    await waitFor(`the procedure for ${sentinel}`, () => {
      if (!existsSync(stamps)) return false
      const line = readFileSync(stamps, 'utf8').split('\n').find((entry) => entry.startsWith(`${sentinel} `))
      if (line) stamped = BigInt(line.split(' ')[1])
      return stamped !== undefined
    })
    latencies.push(Number((stamped as bigint) - before) / 1e6)
    await sleep(GAP_MS)
  }
  return {trials: latencies.length, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(Math.max(...latencies))}
}

async function measureBaseline(root: string, stamp: string, trials: number): Promise<LatencyFigures> {
  if (spawnSync('inotifywait', ['--help']).error) throw new Error('inotifywait is missing: apt-get install inotify-tools')
  const directory = join(root, 'baseline')
  spawnSync('mkdir', ['-p', directory])
  const sentinels = Array.from({length: trials}, (_, index) => join(directory, `sentinel-${index}.dat`))
  for (const sentinel of sentinels) writeFileSync(sentinel, 'sentinel')
  const stamps = join(root, 'baseline.stamps')
  const procedure = `${stamp} "$F" >> ${stamps}`
  const loop = `inotifywait -m -q -e modify --format '%w%f' ${directory} | while IFS= read -r F; do F="$F" sh -c '${procedure.replace(/'/g, `'\\''`)}'; done`
  const child = spawn('sh', ['-c', `export F; ${loop}`], {stdio: ['ignore', 'ignore', 'pipe'], detached: true})
  let ready = ''
  child.stderr!.on('data', (chunk) => (ready += chunk))
  try {
    await sleep(500)
    return await trial(sentinels, stamps)
  } finally {
    stop(child)
  }
}

/**
 * `comet watch` on `trials` sentinels. `initEnv` is the environment of `comet init`, `watchEnv` that of
 * `comet watch` (the Vault benchmark points the agent at a black hole after init).
 */
export async function measureComet(root: string, stamp: string, trials: number, initEnv: NodeJS.ProcessEnv = {}, watchEnv: NodeJS.ProcessEnv = initEnv): Promise<LatencyFigures> {
  const directory = join(root, 'comet')
  spawnSync('mkdir', ['-p', directory])
  const sentinels = Array.from({length: trials}, (_, index) => join(directory, `sentinel-${index}.dat`))
  const stamps = join(root, 'comet.stamps')
  // One procedure per sentinel, since each procedure runs at most once until comet reset.
  // No node: in the manifest: COMET_NODE names it, so that two runs can share one store.
  const manifest = [
    'sentinels:',
    ...sentinels.flatMap((sentinel, index) => [`  - path: ${sentinel}`, '    create: true', `    fencing: p${index}`]),
    'fencing:',
    ...sentinels.map((_, index) => `  p${index}: ${JSON.stringify(`${stamp} "$COMET_SENTINEL" >> ${stamps}`)}`),
  ].join('\n')
  writeFileSync(join(root, 'manifest.yaml'), manifest)
  const env = {...process.env, COMET_STORE: `file:${join(root, 'store')}`, COMET_STATE_DIR: join(root, 'state'), COMET_NODE: 'bench'}
  const init = spawnSync(process.execPath, [RUN_JS, 'init', '--manifest', join(root, 'manifest.yaml'), '--json'], {env: {...env, ...initEnv}, encoding: 'utf8'})
  if (init.status !== 0) throw new Error(`comet init failed: ${init.stderr}${init.stdout.slice(0, 2000)}`)
  const child = spawn(process.execPath, [RUN_JS, 'watch', '--interval', '3600', '--no-fanotify'], {env: {...env, ...watchEnv}, stdio: ['ignore', 'ignore', 'pipe']})
  let log = ''
  child.stderr!.on('data', (chunk) => (log += chunk))
  try {
    await waitFor('comet watch to start', () => log.includes('watching'), 60_000)
    await sleep(300)
    return await trial(sentinels, stamps)
  } finally {
    stop(child)
  }
}

function stop(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGTERM')
  } catch {
    child.kill('SIGTERM')
  }
}
