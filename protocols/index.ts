/** The llmesh wire protocol: schemas, canonical encoding, signing, verification and trust. */
export * from './constants.ts'
export * from './encoding.ts'
export * from './errors.ts'
export * from './schemas/index.ts'
export * from './signing/index.ts'
export * from './trust/index.ts'
export * from './verify.ts'
export * from './wire.ts'
