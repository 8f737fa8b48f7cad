export * from './constants.ts'
export * from './invite.ts'
export * from './membership.ts'
