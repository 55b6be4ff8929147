import {randomBytes} from 'node:crypto'
import {readdirSync, renameSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'

import {errnoCode, UnsafePathError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'
import {ensurePrivateDirectory} from '../files/private-path.js'
import type {StatusReport} from './node-status.js'

export interface SpooledReport {
  id: string
  report: StatusReport
}

/**
 * Reports wait here, one fsynced file each, until the store has them: a crash, a restart or a store that is
 * down loses none. File names sort in the order the reports were made.
 */
export class ReportSpool {
  private sequence = 0

  constructor(readonly directory: string) {}

  add(report: StatusReport): string {
    ensurePrivateDirectory(this.directory)
    const id = `${Date.now().toString().padStart(15, '0')}-${(this.sequence++).toString().padStart(6, '0')}-${randomBytes(3).toString('hex')}`
    writeFileAtomic(join(this.directory, `${id}.json`), JSON.stringify(report) + '\n')
    return id
  }

  /** Pending reports, oldest first. */
  pending(): SpooledReport[] {
    let names: string[]
    try {
      names = readdirSync(this.directory)
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return []
      throw error
    }
    return names
      .filter((name) => name.endsWith('.json') && !name.startsWith('.'))
      .sort()
      .flatMap((name) => {
        const file = join(this.directory, name)
        try {
          const report = readPrivateJson<StatusReport>(file)
          return report ? [{id: name.slice(0, -'.json'.length), report}] : []
        } catch (error) {
          if (error instanceof UnsafePathError) throw error
          // One unparsable entry must not block every later report: set aside, kept for a human, not lost.
          renameSync(file, `${file}.corrupt`)
          return []
        }
      })
  }

  get depth(): number {
    try {
      return readdirSync(this.directory).filter((name) => name.endsWith('.json') && !name.startsWith('.')).length
    } catch {
      return 0
    }
  }

  remove(id: string): void {
    try {
      unlinkSync(join(this.directory, `${id}.json`))
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error
    }
  }
}
