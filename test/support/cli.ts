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
