/**
 * The body of GET /v1/models in OpenAI's list shape: the model served here (`served: "local"`,
 * its `version`), then the models peers serve (`served: "remote"`, their `versions` and how many
 * `peers`; node/serving/peer-choice.ts), at most MODELS_MAX_LISTED entries in all.
 */
import { MODELS_MAX_LISTED } from '../serving/constants.ts'
import type { RemoteModel } from '../serving/peer-choice.ts'
import type { LoadedModel } from './types.ts'

/** The list: `local` is the name served here and the loaded model, if any. */
export function modelList(
  local: { name: string; model: LoadedModel | undefined } | undefined,
  remoteModels?: (local: ReadonlySet<string>, max: number) => RemoteModel[],
) {
  const created = Math.floor((local?.model?.loadedAt ?? Date.now()) / 1000)
  const here =
    local === undefined
      ? []
      : [
          {
            id: local.name,
            object: 'model',
            created,
            owned_by: 'llmesh',
            served: 'local',
            version: local.model?.version ?? null,
          },
        ]
  const remote = remoteModels?.(new Set(here.map((m) => m.id)), MODELS_MAX_LISTED - here.length) ?? []
  return {
    object: 'list',
    data: [
      ...here,
      ...remote.map((r) => ({
        id: r.model,
        object: 'model',
        created: Math.floor(r.since / 1000),
        owned_by: 'llmesh',
        served: 'remote',
        peers: r.peers,
        versions: r.versions,
      })),
    ],
  }
}
