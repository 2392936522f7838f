// The custom role the Function App's identity holds on the target Azure ML scopes: exactly the operations
// the product calls, each with the endpoint (E1-E27, D1-D5; shared/aml/catalog.py, docs/architecture.md)
// that needs it. A role definition is a subscription-level resource, hence this module's target scope.
//
// Sources: the Microsoft.MachineLearningServices operations list (Azure permissions for AI + machine
// learning) and the Azure ML "manage roles" article (MLflow table: runs/read covers a run's metrics and
// artifacts). The legacy model-management asset and image APIs and the run-notification API have no
// operation of their own in that list; they are mapped to the nearest operation below and marked
// "assumed". docs/deploy.md says how to confirm them: a 403 AuthorizationFailed names the action it missed.
targetScope = 'subscription'

@description('Name of the azd environment: makes the role name unique in the tenant.')
param environmentName string

@description('Scopes the role can be assigned at: subscription ids (/subscriptions/<id>) or resource group ids.')
param assignableScopes array

@description('True: the role also allows deleting a whole workspace (D1). Off unless the erasure runbook needs it.')
param allowWorkspaceDeletion bool

var readActions = [
  // S1 (workspaces of a subscription), E1 (workspaces of a resource group), E2 (one workspace and its discoveryUrl).
  'Microsoft.MachineLearningServices/workspaces/read'
  // E3 (compute targets), E4 (one compute target). Not computes/listKeys/action: no compute secrets.
  'Microsoft.MachineLearningServices/workspaces/computes/read'
  // E5 (experiments).
  'Microsoft.MachineLearningServices/workspaces/experiments/read'
  // E6 (runs of an experiment), E7 (one run), E8 (run metrics), E9 (one metric), E10 (a run's artifacts),
  // E23 (a pipeline experiment = a pipeline run); E11, E12 (run notification tasks): assumed.
  'Microsoft.MachineLearningServices/workspaces/experiments/runs/read'
  // E10 (the artifact service's container of a run).
  'Microsoft.MachineLearningServices/workspaces/metadata/artifacts/read'
  // E13 (datastores), E14 (one datastore), read with includeSecret=false; E27 (a pipeline data source):
  // assumed. Not datastores/listsecrets/action: no datastore credentials.
  'Microsoft.MachineLearningServices/workspaces/datastores/read'
  // E15 (models), E16 (one model); E17, E18 (assets) and E19, E20 (images) of the same model-management
  // service: assumed.
  'Microsoft.MachineLearningServices/workspaces/models/read'
  // E21 (deployed services), E22 (one service).
  'Microsoft.MachineLearningServices/workspaces/services/read'
  // E24 (a pipeline graph), E26 (a pipeline template): published pipelines and pipeline endpoints.
  'Microsoft.MachineLearningServices/workspaces/endpoints/pipelines/read'
  // E25 (a pipeline module).
  'Microsoft.MachineLearningServices/workspaces/modules/read'
  // The v2 (ARM) families at DSR_ARM_V2_API_VERSION (shared/aml/catalog.py V1-V36), each action named after the
  // resource type it reads (assumed where the operations list was not checked: a 403 names the action missed).
  // V1 (jobs, archived too), V2 (one job, a pipeline's child job).
  'Microsoft.MachineLearningServices/workspaces/jobs/read'
  // V3, V4 (model containers); V5, V6 (model versions): models/read above covers the containers.
  'Microsoft.MachineLearningServices/workspaces/models/versions/read'
  // V7, V8 (data containers); V9, V10 (data versions).
  'Microsoft.MachineLearningServices/workspaces/data/read'
  'Microsoft.MachineLearningServices/workspaces/data/versions/read'
  // V11, V12 (environment containers); V13, V14 (environment versions).
  'Microsoft.MachineLearningServices/workspaces/environments/read'
  'Microsoft.MachineLearningServices/workspaces/environments/versions/read'
  // V15, V16 (component containers); V17, V18 (component versions).
  'Microsoft.MachineLearningServices/workspaces/components/read'
  'Microsoft.MachineLearningServices/workspaces/components/versions/read'
  // V19, V20 (code containers); V21, V22 (code versions).
  'Microsoft.MachineLearningServices/workspaces/codes/read'
  'Microsoft.MachineLearningServices/workspaces/codes/versions/read'
  // V23, V24 (online endpoints); V25, V26 (online deployments). Not onlineEndpoints/listKeys: no keys.
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read'
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read'
  // V27, V28 (batch endpoints); V29, V30 (batch deployments).
  'Microsoft.MachineLearningServices/workspaces/batchEndpoints/read'
  'Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments/read'
  // V31, V32 (schedules, disabled ones too).
  'Microsoft.MachineLearningServices/workspaces/schedules/read'
  // V33, V34 (workspace connections). Not connections/listsecrets/action: no connection credentials.
  'Microsoft.MachineLearningServices/workspaces/connections/read'
  // V35, V36 (v2 datastores): datastores/read above; never datastores/listSecrets.
]

var deleteActions = [
  // D2 (delete a model); D3 (delete an asset) and D4 (delete an image): assumed.
  'Microsoft.MachineLearningServices/workspaces/models/delete'
  // D5 (delete a deployed service): an ACI or an AKS web service.
  'Microsoft.MachineLearningServices/workspaces/services/aci/delete'
  'Microsoft.MachineLearningServices/workspaces/services/aks/delete'
]

// D1 (delete an entire workspace) and the status of that long-running operation: only when the parameter
// allowWorkspaceDeletion is true. The status URL is location-level (under the subscription).
var workspaceDeleteActions = allowWorkspaceDeletion ? ['Microsoft.MachineLearningServices/workspaces/delete', 'Microsoft.MachineLearningServices/locations/workspaceOperationsStatus/read'] : []

var roleName = 'Azure ML data subject requests (${environmentName})'

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'aml-dsr-processor', environmentName)
  properties: {
    roleName: roleName
    description: 'Reads what Azure ML holds about a person (export) and deletes models, assets, images and services (erasure) for GDPR data subject requests.'
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(readActions, deleteActions, workspaceDeleteActions)
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output id string = role.id
output roleName string = roleName
output actions array = concat(readActions, deleteActions, workspaceDeleteActions)
