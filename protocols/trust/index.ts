export * from './freshness.ts'
export * from './rotation.ts'
export * from './sequence.ts'
export * from './sign-root.ts'
