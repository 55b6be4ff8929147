/**
 * Large servers: N sentinels in N/10 directories. comet verify against `sha256sum -c` over the same files (the
 * floor for hashing them; medians of five runs each, in turns) and `aide --check` (Debian's aide), each timed
 * with its start-up; and comet watch's
 * resident memory, idle CPU and time to its first full verify.
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {randomBytes} from 'node:crypto'

import {percentile, round, RUN_JS, sleep, waitFor} from './support.js'

export interface ScaleResult {
  sentinels: number
  directories: number
  initSeconds: number
  verifySeconds: number
  sha256sumSeconds: number
  aideSeconds: number
  verifyVsSha256sum: number
  verifyVsAide: number
  watch: {firstFullVerifySeconds: number; rssMiB: number; idleCpuPercent: number}
  targets: {verifyVsAideMax: number; verifyVsSha256sumMax: number; rssMiBMax: number; idleCpuPercentMax: number; met: boolean}
}

function timed(command: string, args: string[], options: Parameters<typeof spawnSync>[2] = {}): number {
  const started = process.hrtime.bigint()
  const result = spawnSync(command, args, {stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26, ...options})
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (result.error) throw result.error
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${String(result.stderr).slice(0, 2000)}`)
  return seconds
}

export async function benchScale(sentinels = 100_000, perDirectory = 10): Promise<ScaleResult> {
  if (spawnSync('aide', ['--version']).error) throw new Error('aide is missing: apt-get install aide')
  const root = mkdtempSync(join(tmpdir(), 'comet-scale-'))
  try {
    const data = join(root, 'data')
    const directories = Math.ceil(sentinels / perDirectory)
    const paths: string[] = []
    for (let d = 0; d < directories; d++) {
      const directory = join(data, `d${Math.floor(d / 100)}`, `d${d}`)
      mkdirSync(directory, {recursive: true})
      for (let f = 0; f < perDirectory && paths.length < sentinels; f++) {
        const path = join(directory, `s${f}.dat`)
        writeFileSync(path, randomBytes(512))
        paths.push(path)
      }
    }
    const manifest = ['node: scale', 'sentinels:', ...paths.map((path) => `  - {path: ${path}, create: false}`), 'fencing:', '  noop: "true"', 'default_fencing: noop', ''].join('\n')
    writeFileSync(join(root, 'manifest.yaml'), manifest)
    const env = {...process.env, COMET_STORE: `file:${join(root, 'store')}`, COMET_STATE_DIR: join(root, 'state'), COMET_NODE: 'scale'}
    const initSeconds = timed(process.execPath, [RUN_JS, 'init', '--manifest', join(root, 'manifest.yaml'), '--json'], {env})

    // The floor: sha256sum -c over the same files.
    writeFileSync(join(root, 'sums'), execFileSync('sh', ['-c', `cd / && find ${data} -type f -print0 | xargs -0 sha256sum`], {maxBuffer: 1 << 28}))

    // AIDE with a database of the same files (content checksum sha256 plus the usual attributes).
    const aideConfig = join(root, 'aide.conf')
    writeFileSync(aideConfig, `database_in=file:${root}/aide.db\ndatabase_out=file:${root}/aide.db.new\ngzip_dbout=no\nreport_url=stdout\nComet = p+i+n+u+g+s+m+c+sha256\n${data} Comet\n`)
    timed('aide', ['--init', `--config=${aideConfig}`])
    execFileSync('mv', [join(root, 'aide.db.new'), join(root, 'aide.db')])
    const aideSeconds = timed('aide', ['--check', `--config=${aideConfig}`])

    // comet verify and sha256sum -c taken in turns, five times each, and the medians compared: on a shared
    // machine, a single pair of runs can land on either side of a noisy moment.
    const verifyTimes: number[] = []
    const sha256sumTimes: number[] = []
    for (let round = 0; round < 5; round++) {
      verifyTimes.push(timed(process.execPath, [RUN_JS, 'verify', '--no-fence', '--json'], {env}))
      sha256sumTimes.push(timed('sha256sum', ['--quiet', '-c', join(root, 'sums')]))
    }
    const verifySeconds = percentile(verifyTimes, 50)
    const sha256sumSeconds = percentile(sha256sumTimes, 50)

    const watchStarted = process.hrtime.bigint()
    const watch = spawn(process.execPath, [RUN_JS, 'watch', '--interval', '3600'], {env, stdio: ['ignore', 'ignore', 'pipe']})
    let log = ''
    watch.stderr!.on('data', (chunk) => (log += chunk))
    let firstFullVerifySeconds = 0
    let rssMiB = 0
    let idleCpuPercent = 0
    try {
      await waitFor('comet watch to finish its first verify', () => log.includes('watching'), 600_000)
      firstFullVerifySeconds = Number(process.hrtime.bigint() - watchStarted) / 1e9
      await sleep(3000)
      const ticks = () => readFileSync(`/proc/${watch.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((sum, value) => sum + Number(value), 0)
      const before = ticks()
      const idleWindow = 10
      await sleep(idleWindow * 1000)
      idleCpuPercent = ((ticks() - before) / 100 / idleWindow) * 100
      rssMiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${watch.pid}/status`, 'utf8'))?.[1]) / 1024
    } finally {
      watch.kill('SIGTERM')
    }
    const verifyVsSha256sum = round(verifySeconds / sha256sumSeconds, 2)
    const verifyVsAide = round(verifySeconds / aideSeconds, 2)
    return {
      sentinels: paths.length,
      directories,
      initSeconds: round(initSeconds),
      verifySeconds: round(verifySeconds),
      sha256sumSeconds: round(sha256sumSeconds),
      aideSeconds: round(aideSeconds),
      verifyVsSha256sum,
      verifyVsAide,
      watch: {firstFullVerifySeconds: round(firstFullVerifySeconds), rssMiB: round(rssMiB, 1), idleCpuPercent: round(idleCpuPercent, 2)},
      targets: {
        verifyVsAideMax: 0.25,
        verifyVsSha256sumMax: 2,
        rssMiBMax: 150,
        idleCpuPercentMax: 1,
        met: verifyVsAide <= 0.25 && verifyVsSha256sum <= 2 && rssMiB <= 150 && idleCpuPercent < 1,
      },
    }
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
}
