import {utimesSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

/**
 * Queues more inotify events in `directory` than the kernel keeps by default (fs.inotify.max_queued_events,
 * 16 384), while the reader is held: attribute changes alternating between two files, so that the kernel
 * merges none of them with the one before.
 */
export function overflowQueue(directory: string, events = 20_000): void {
  const files = [join(directory, 'noise-a'), join(directory, 'noise-b')]
  for (const file of files) writeFileSync(file, '')
  const now = new Date()
  for (let i = 0; i < events; i++) utimesSync(files[i % 2], now, now)
}
