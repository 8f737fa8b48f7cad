export * from './constants.ts'
export * from './errors.ts'
export * from './rotation.ts'
export * from './seal.ts'
