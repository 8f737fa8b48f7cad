/**
 * Compatibility and disk checks run before any block is downloaded. Pure given the environment
 * facts passed in, so tests inject architecture, RAM, runtime version and free disk.
 */
import { totalmem } from 'node:os'
import semver from 'semver'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { DISK_RESERVE_BYTES, STAGING_INDEX_BYTES_PER_BLOCK } from './constants.ts'
import { InstallError } from './errors.ts'
import { runtimeVersion } from './runtime-version.ts'

/** Facts about this device. */
export interface DeviceEnv {
  /** `process.arch`. */
  arch: string
  /** Total RAM, MiB. */
  totalRamMb: number
  /** Installed node-llama-cpp version. */
  runtimeVersion: string
  /** Free bytes on the data directory's filesystem. */
  freeDiskBytes: number
}

/** Returns why the release cannot run here, or null. */
export function checkCompatibility(m: ReleaseManifest, env: DeviceEnv): InstallError | null {
  if (!m.architectures.includes('any') && !m.architectures.includes(env.arch as never)) {
    return new InstallError(
      'ERR_INCOMPATIBLE_ARCH',
      `${m.model}@${m.version} is built for ${m.architectures.join(', ')}, this device is ${env.arch}`,
    )
  }
  if (m.min_ram_mb > env.totalRamMb) {
    return new InstallError(
      'ERR_INSUFFICIENT_RAM',
      `${m.model}@${m.version} needs ${m.min_ram_mb} MiB of RAM, this device has ${env.totalRamMb} MiB`,
    )
  }
  if (!semver.satisfies(env.runtimeVersion, m.runtime, { includePrerelease: true })) {
    return new InstallError(
      'ERR_RUNTIME_RANGE',
      `${m.model}@${m.version} needs runtime ${m.runtime}, this device runs node-llama-cpp ${env.runtimeVersion}`,
    )
  }
  return null
}

/**
 * Refuses when the disk cannot hold what a download still has to write plus a reserve. A download is
 * written straight into its file (node/install/staging.ts), blocks already held included, and the
 * corestore keeps only the Merkle tree and bitfield (`STAGING_INDEX_BYTES_PER_BLOCK` each); a resumed
 * download has `stagedBytes` of its file on disk already.
 */
export function checkDisk(
  m: ReleaseManifest,
  stagedBytes: number,
  freeDiskBytes: number,
  reserve = DISK_RESERVE_BYTES,
): InstallError | null {
  const file = Math.max(0, m.file.size - stagedBytes)
  const index = m.chunks.chunks.length * STAGING_INDEX_BYTES_PER_BLOCK
  const need = file + index + reserve
  if (need > freeDiskBytes) {
    return new InstallError(
      'ERR_INSUFFICIENT_DISK',
      `${m.model}@${m.version} needs ${mib(need)} MiB of free disk (file ${mib(m.file.size)}, ${mib(stagedBytes)} of it on disk already, + index ${mib(index)} + reserve ${mib(reserve)}), ${mib(freeDiskBytes)} MiB free`,
    )
  }
  return null
}

function mib(n: number): string {
  return (n / 1048576).toFixed(1)
}

/** This device's facts (`overrides` win, for tests); free disk from `statfs` of `root`. */
export async function readDeviceEnv(
  root: string,
  statfs: (path: string) => Promise<{ bavail: number; bsize: number }>,
  overrides: Partial<Omit<DeviceEnv, 'freeDiskBytes'>> = {},
): Promise<DeviceEnv> {
  const fs = await statfs(root)
  return {
    arch: overrides.arch ?? process.arch,
    totalRamMb: overrides.totalRamMb ?? Math.floor(totalmem() / 1048576),
    runtimeVersion: overrides.runtimeVersion ?? (await runtimeVersion()),
    freeDiskBytes: fs.bavail * fs.bsize,
  }
}
