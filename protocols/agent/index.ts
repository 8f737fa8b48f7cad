/** Agent releases: llmesh updating itself through its own mesh (pure rules). */
export * from './constants.ts'
export * from './fallback.ts'
export * from './reserved-names.ts'
export * from './upgrade.ts'
