import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
  json: any
}

/** A machine for one test: its own store, state directory and data folder, all under `root`. */
export class TestNode {
  readonly store: string
  readonly stateDir: string
  readonly data: string

  constructor(
    readonly root: string,
    readonly node = 'web01',
  ) {
    this.store = join(root, 'store')
    this.stateDir = join(root, 'state')
    this.data = join(root, 'data')
    mkdirSync(this.data, {recursive: true, mode: 0o700})
  }

  get env(): NodeJS.ProcessEnv {
    return {...process.env, COMET_STORE: `file:${this.store}`, COMET_STATE_DIR: this.stateDir, COMET_NODE: this.node, FORCE_COLOR: '0', NO_COLOR: '1'}
  }

  /** Runs the built CLI as a user would. */
  run(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
    const result = spawnSync(process.execPath, [RUN_JS, ...args], {env: {...this.env, ...env}, encoding: 'utf8', timeout: 60_000})
    let json: unknown
    if (args.includes('--json')) {
      try {
        json = JSON.parse(result.stdout)
      } catch {}
    }
    return {status: result.status, stdout: result.stdout, stderr: result.stderr, json}
  }

  spawn(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    return spawn(process.execPath, [RUN_JS, ...args], {env: {...this.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  }

  /** Writes a manifest whose procedures append a line to `log` (one line per run). */
  writeManifest(text: string, name = 'manifest.yaml'): string {
    const file = join(this.root, name)
    writeFileSync(file, text)
    return file
  }
}

/** A running `comet watch`: its log so far, and a stop that resolves with its exit code once it has exited. */
export interface RunningAgent {
  process: ChildProcess
  log: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts `comet watch` and waits until it watches. */
export async function startWatch(node: TestNode, args: string[] = [], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<RunningAgent> {
  const child = node.spawn(['watch', '--interval', '3600', ...args], env)
  let log = ''
  child.stderr!.on('data', (chunk) => (log += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const agent: RunningAgent = {
    process: child,
    log: () => log,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
  const deadline = Date.now() + timeoutMs
  while (!log.includes('watching')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await agent.stop('SIGKILL')
      throw new Error(`comet watch did not start: ${log}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return agent
}
