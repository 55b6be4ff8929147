/**
 * Trip on first touch: the time from a reader's open() of a sentinel to the moment the agent has stopped it
 * (SIGSTOP, from the fanotify addon's reader thread), p50 and p99. Baseline in the same run: the same reader's
 * open() and first read of an unguarded file, start to finish.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {compiled, percentile, round, RUN_JS, sleep, waitFor} from './support.js'

export interface FreezeResult {
  trials: number
  openToFreeze: {p50Ms: number; p99Ms: number; maxMs: number}
  baselineOpenAndRead: {p50Ms: number; p99Ms: number}
}

function stamps(output: string): bigint[] {
  return output.trim().split('\n').map((line) => BigInt(line.split(' ')[0]))
}

export async function benchFanotifyFreeze(trials = 200): Promise<FreezeResult> {
  if (process.getuid?.() !== 0) throw new Error('the freeze benchmark needs root (fanotify permission events)')
  const reader = compiled('openstamp')
  const root = mkdtempSync(join(tmpdir(), 'comet-bench-freeze-'))
  const data = join(root, 'data')
  mkdirSync(data)
  try {
    const unguarded = join(root, 'unguarded.dat')
    writeFileSync(unguarded, 'x'.repeat(4096))
    const baseline: number[] = []
    for (let trial = 0; trial < trials; trial++) {
      const [start, end] = stamps(spawnSync(reader, [unguarded], {encoding: 'utf8'}).stdout)
      baseline.push(Number(end - start) / 1e6)
    }

    const sentinels = Array.from({length: trials}, (_, index) => join(data, `ledger-${index}.xlsx`))
    writeFileSync(join(root, 'manifest.yaml'), ['node: freeze', 'sentinels:', ...sentinels.map((path) => `  - {path: ${path}, create: true}`), 'fencing:', '  noop: "true"', 'default_fencing: noop', ''].join('\n'))
    const env = {...process.env, COMET_STORE: `file:${join(root, 'store')}`, COMET_STATE_DIR: join(root, 'state'), COMET_NODE: 'freeze'}
    const init = spawnSync(process.execPath, [RUN_JS, 'init', '--manifest', join(root, 'manifest.yaml')], {env, encoding: 'utf8'})
    if (init.status !== 0) throw new Error(`comet init failed: ${init.stderr}`)
    const watch = spawn(process.execPath, [RUN_JS, 'watch', '--interval', '3600'], {env, stdio: ['ignore', 'ignore', 'pipe']})
    let log = ''
    watch.stderr!.on('data', (chunk) => (log += chunk))
    const latencies: number[] = []
    try {
      await waitFor('comet watch', () => log.includes('watching'), 60_000)
      if (!log.includes('detectors: fanotify')) throw new Error(`fanotify is not in use: ${log}`)
      const statusFile = join(root, 'store', 'comet-status', 'freeze.json')
      for (const sentinel of sentinels) {
        const child = spawn(reader, [sentinel], {stdio: ['ignore', 'pipe', 'ignore']})
        let output = ''
        child.stdout!.on('data', (chunk) => (output += chunk))
        const exited = new Promise((resolve) => child.once('exit', resolve))
        let frozenAt: bigint | undefined
        try {
          await waitFor('the incident', () => {
            try {
              const incident = JSON.parse(readFileSync(statusFile, 'utf8')).data.incidents.findLast((entry: {suspects?: Array<{pid: number}>}) => entry.suspects?.[0]?.pid === child.pid)
              if (incident?.suspects[0].frozenAtMonotonicNs) frozenAt = BigInt(incident.suspects[0].frozenAtMonotonicNs)
            } catch {}
            return frozenAt !== undefined && output.length > 0
          })
        } finally {
          child.kill('SIGKILL')
        }
        await exited
        latencies.push(Number((frozenAt as bigint) - stamps(output)[0]) / 1e6)
        await sleep(5)
      }
    } finally {
      watch.kill('SIGTERM')
      await new Promise((resolve) => watch.once('exit', resolve))
    }
    return {
      trials,
      openToFreeze: {p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(Math.max(...latencies))},
      baselineOpenAndRead: {p50Ms: round(percentile(baseline, 50)), p99Ms: round(percentile(baseline, 99))},
    }
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
}
