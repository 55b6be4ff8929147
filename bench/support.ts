import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const RUN_JS = join(ROOT, 'bin', 'run.js')

/** Compiles bench/monostamp.c once into a cache outside the repository. */
export function monostamp(): string {
  return compiled('monostamp')
}

/** Compiles bench/<name>.c once into a cache outside the repository. */
export function compiled(name: string): string {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'safecomet', 'bench')
  const binary = join(cache, name)
  const source = join(ROOT, 'bench', `${name}.c`)
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(cache, {recursive: true})
    execFileSync('cc', ['-O2', '-o', binary, source])
  }
  return binary
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

export function round(value: number, digits = 3): number {
  return Number(value.toFixed(digits))
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(1)
  }
}
