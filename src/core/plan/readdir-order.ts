import {opendirSync} from 'node:fs'

/**
 * The names of a directory in the order readdir(3) returns them, as an encryptor walks it (hash order in ext4's
 * indexed directories). Node's readdirSync sorts them (libuv's scandir), which an encryptor does not.
 */
export function readdirOrder(directory: string): string[] {
  const dir = opendirSync(directory)
  const names: string[] = []
  try {
    for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) names.push(entry.name)
  } finally {
    dir.closeSync()
  }
  return names
}
