/**
 * Ransomware drills: our simulator against a tree of real-looking files with sentinels planted by
 * `comet init` from a manifest made by `comet plan`, and `comet watch` fencing. The procedure stops the
 * simulator (kills its process group). Two numbers per run: files lost in total, and files lost after the
 * simulator first touched a sentinel (the agent's own speed).
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {randomBytes, randomInt} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {RUN_JS, sleep, waitFor} from '../support.js'

const SIMULATOR = fileURLToPath(new URL('./simulator.js', import.meta.url))
const EXTENSIONS = ['.docx', '.xlsx', '.pdf', '.sql', '.db', '.txt', '.csv', '.jpg', '.pptx', '.odt']
const FOLDERS = ['finance', 'finance/2025', 'finance/2026', 'hr', 'hr/contracts', 'sales', 'sales/quotes', 'legal', 'db', 'db/dumps', 'projects', 'projects/alpha', 'projects/beta', 'shared', 'shared/scans', 'archive', 'archive/2024', 'it', 'marketing', 'board']

export interface DrillFigures {
  variant: string
  rate: string
  runs: number
  lostTotal: {median: number; max: number}
  lostAfterFirstSentinel: {median: number; max: number}
  /** Runs stopped by the drill's cap, not by the agent: nothing tripped in time. */
  capped: number
}

export interface DrillVariant {
  name: string
  variant: 'overwrite' | 'copy-unlink' | 'rename-rewrite' | 'exfiltrate'
  workers: number
}

export const VARIANTS: DrillVariant[] = [
  {name: 'overwrite in place', variant: 'overwrite', workers: 1},
  {name: 'encrypted copy, then unlink', variant: 'copy-unlink', workers: 1},
  {name: 'rename to .locked, then rewrite', variant: 'rename-rewrite', workers: 1},
  {name: 'four parallel workers', variant: 'overwrite', workers: 4},
  {name: 'read, write the encrypted copy elsewhere', variant: 'exfiltrate', workers: 1},
]

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

function makePristineTree(root: string, files: number): void {
  for (let index = 0; index < files; index++) {
    const folder = join(root, FOLDERS[index % FOLDERS.length])
    mkdirSync(folder, {recursive: true})
    const extension = EXTENSIONS[randomInt(EXTENSIONS.length)]
    writeFileSync(join(folder, `document-${index}${extension}`), randomBytes(512 + randomInt(8 * 1024)))
  }
}

async function drill(work: string, pristine: string, variant: DrillVariant, rate: number, cap: number): Promise<{lost: number; afterFirstSentinel: number; capped: boolean}> {
  rmSync(work, {recursive: true, force: true})
  mkdirSync(work, {recursive: true})
  const tree = join(work, 'tree')
  execFileSync('cp', ['-a', pristine, tree])
  const pidFile = join(work, 'simulator.pid')
  const manifest = join(work, 'manifest.yaml')
  const env = {...process.env, COMET_STORE: `file:${join(work, 'store')}`, COMET_STATE_DIR: join(work, 'state'), COMET_NODE: 'drill'}
  const fence = `kill -KILL -$(cat ${pidFile})`
  execFileSync(process.execPath, [RUN_JS, 'plan', '--root', tree, '--output', manifest, '--fencing-command', fence, '--node', 'drill'], {env})
  const init = spawnSync(process.execPath, [RUN_JS, 'init', '--manifest', manifest, '--json'], {env, encoding: 'utf8'})
  if (init.status !== 0) throw new Error(`comet init failed: ${init.stderr}`)
  const sentinels = new Set<string>(JSON.parse(init.stdout).sentinels.map((s: {path: string}) => s.path))
  const watch = spawn(process.execPath, [RUN_JS, 'watch', '--interval', '3600'], {env, stdio: ['ignore', 'ignore', 'pipe']})
  let log = ''
  watch.stderr!.on('data', (chunk) => (log += chunk))
  const attackLog = join(work, 'attack.log')
  const go = join(work, 'go')
  try {
    await waitFor('comet watch', () => log.includes('watching'), 60_000)
    const simulator = spawn(process.execPath, [SIMULATOR, '--root', tree, '--log', attackLog, '--variant', variant.variant, '--rate', String(rate), '--workers', String(variant.workers), '--wait-for', go], {detached: true, stdio: 'ignore'})
    writeFileSync(pidFile, String(simulator.pid))
    writeFileSync(go, '')
    let exited = false
    simulator.on('exit', () => (exited = true))
    let capped = false
    while (!exited) {
      await sleep(20)
      const touched = existsSync(attackLog) ? readFileSync(attackLog, 'utf8').split('\n').length - 1 : 0
      if (touched >= cap) {
        capped = true
        try {
          process.kill(-(simulator.pid as number), 'SIGKILL')
        } catch {}
      }
    }
    await sleep(50)
    const touched = readFileSync(attackLog, 'utf8').split('\n').filter(Boolean)
    const first = touched.findIndex((path) => sentinels.has(path))
    const lost = touched.filter((path) => !sentinels.has(path)).length
    const afterFirstSentinel = first < 0 ? lost : touched.slice(first).filter((path) => !sentinels.has(path)).length
    return {lost, afterFirstSentinel, capped}
  } finally {
    watch.kill('SIGTERM')
    await new Promise((resolve) => watch.once('exit', resolve))
  }
}

export async function benchDrills(options: {files?: number; runs?: number; rates?: number[]; cap?: number} = {}): Promise<DrillFigures[]> {
  const files = options.files ?? 10_000
  const runs = options.runs ?? 10
  const rates = options.rates ?? [300, 0]
  const cap = options.cap ?? 2000
  const root = mkdtempSync(join(tmpdir(), 'comet-drill-'))
  try {
    const pristine = join(root, 'pristine')
    makePristineTree(pristine, files)
    const results: DrillFigures[] = []
    for (const variant of VARIANTS)
      for (const rate of rates) {
        const lost: number[] = []
        const after: number[] = []
        let capped = 0
        for (let run = 0; run < runs; run++) {
          const outcome = await drill(join(root, 'work'), pristine, variant, rate, cap)
          lost.push(outcome.lost)
          after.push(outcome.afterFirstSentinel)
          if (outcome.capped) capped++
        }
        const figures: DrillFigures = {
          variant: variant.name,
          rate: rate > 0 ? `${rate} files/s` : 'unthrottled',
          runs,
          lostTotal: {median: median(lost), max: Math.max(...lost)},
          lostAfterFirstSentinel: {median: median(after), max: Math.max(...after)},
          capped,
        }
        process.stderr.write(`  ${figures.variant}, ${figures.rate}: lost median ${figures.lostTotal.median} (max ${figures.lostTotal.max}), after first sentinel median ${figures.lostAfterFirstSentinel.median} (max ${figures.lostAfterFirstSentinel.max})${capped ? `, ${capped} run(s) capped at ${cap}` : ''}\n`)
        results.push(figures)
      }
    return results
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
}
