// Production deployment of the Azure ML data subject request service: keyless (managed identity only),
// least privilege (written out in app/rbac.bicep and app/aml-role.bicep), private (storage and Key Vault
// only through private endpoints of app/network.bicep). Deployed at subscription scope
// because the custom Azure ML role is a subscription-level resource and its assignments live at the target
// workspaces, resource groups and subscriptions. `azd up`, or `az deployment sub create` (docs/deploy.md).
targetScope = 'subscription'

// ---- Environment ----

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group, tags every resource, seeds unique names.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse; empty = rg-<environmentName>.')
param resourceGroupName string = ''

// ---- Azure ML targets and what the identity may do there ----

@description('ARM ids of Azure ML workspaces the service may read (and, for erasure, delete in).')
param amlWorkspaceIds array = []

@description('ARM ids (/subscriptions/<id>/resourceGroups/<name>) of resource groups whose workspaces the service may read.')
param amlResourceGroupIds array = []

@description('Ids (GUIDs) of subscriptions whose workspaces the service may read.')
param amlSubscriptionIds array = []

@description('True: the custom role allows deleting a whole workspace (D1) and the app accepts such requests (DSR_ALLOW_WORKSPACE_DELETION). Leave false unless the erasure runbook needs it.')
param allowWorkspaceDeletion bool = false

@description('DSR_AUTO_APPROVE_ERASURE: true = an erasure starts without a second person\'s approval. Leave false in production.')
param autoApproveErasure bool = false

@description('DSR_AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT: true = a whole-workspace export (everyone\'s records) starts without a second person\'s approval. Leave false in production.')
param autoApproveWholeWorkspaceExport bool = false

@description('DSR_DELETE_VERIFY_ATTEMPTS: reads after a delete until the object answers 404.')
@minValue(1)
param deleteVerifyAttempts int = 4

@description('DSR_WORKSPACE_PURGE: true = a whole-workspace erasure (D1) is a permanent delete (forceToPurge=true); false = the default soft delete, recorded as recoverable until a date (14 days).')
param workspacePurge bool = true

@description('DSR_ARM_WORKSPACE_DELETE_API_VERSION: api-version of the workspace DELETE (D1); forceToPurge needs 2024-04-01 or later.')
param armWorkspaceDeleteApiVersion string = '2025-12-01'

@description('DSR_ARM_V2_API_VERSION: api-version of the v2 (ARM) families under a workspace (jobs, assets, endpoints, schedules, connections, v2 datastores) and of the compute family.')
param armV2ApiVersion string = '2026-07-01'

// ---- Data protection ----

@description('Days an export package is kept in container dsr-exports before the lifecycle rule deletes it.')
@minValue(1)
@maxValue(365)
param exportRetentionDays int = 30

@description('HMAC key of the pseudonyms in logs and indexes (at least 32 characters). Stored in Key Vault; keep it stable across deployments.')
@secure()
@minLength(32)
param pseudonymKey string

@description('HMAC key of the audit chain (at least 32 characters). Stored in Key Vault; keep it stable across deployments.')
@secure()
@minLength(32)
param auditKey string

@description('Days each version of an audit anchor (container dsr-audit-anchors) is immutable: no one, the app included, can delete or overwrite it before.')
@minValue(1)
param auditAnchorRetentionDays int = 2190

@description('DSR_KEY_VAULT_AUDIENCE: audience of the token for Key Vault calls (sign with the package signing key).')
param keyVaultAudience string = 'https://vault.azure.net/.default'

@description('DSR_CALLBACK_ALLOWED_HOSTS: hosts a request\'s callbackUrl may name (host, host:port, *.suffix), comma-separated; empty = no callback accepted.')
param callbackAllowedHosts string = ''

@description('HMAC key that signs the callbacks (at least 32 characters; required when callbackAllowedHosts is set). Stored in Key Vault; receivers hold the same key.')
@secure()
param callbackSigningKey string = ''

// ---- HTTP API authentication ----

@description('Client id of an Entra app registration that protects the HTTP API (App Service Authentication); empty = function keys only.')
param apiEntraClientId string = ''

@description('Client ids of the applications allowed to call the API when apiEntraClientId is set; empty = any holder of a token for the API.')
param apiAllowedClientApplications array = []

@description('DSR_ENTRA_ISSUERS: accepted token issuers, comma-separated ({tenant} = this tenant).')
param entraIssuers string = 'https://login.microsoftonline.com/{tenant}/v2.0,https://sts.windows.net/{tenant}/'

@description('DSR_ENTRA_JWKS_URL: signing keys of the tokens ({tenant} = this tenant).')
param entraJwksUrl string = 'https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys'

@description('DSR_ENTRA_ALLOWED_HOSTS: the only hosts the app fetches signing keys from.')
param entraAllowedHosts string = 'login.microsoftonline.com'

@description('DSR_PACKAGE_SAS_MINUTES: lifetime of a read-only download link to an export package (1-60).')
@minValue(1)
@maxValue(60)
param packageSasMinutes int = 15

// ---- Scale ----

@description('Maximum instances of the app (Flex Consumption: 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of one instance in MB (2048 or 4096).')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

// ---- App settings with a default in shared/core/settings.py (the same defaults here) ----

@description('DSR_ARM_BASE_URL: Azure Resource Manager.')
param armBaseUrl string = 'https://management.azure.com'

@description('DSR_EXPERIMENTS_BASE_URL: run history, artifacts, notifications, datastores ({location} = the workspace region).')
param experimentsBaseUrl string = 'https://{location}.experiments.azureml.net'

@description('DSR_MODELMANAGEMENT_BASE_URL: models, assets, images, services.')
param modelManagementBaseUrl string = 'https://{location}.modelmanagement.azureml.net'

@description('DSR_PIPELINES_BASE_URL: pipeline objects.')
param pipelinesBaseUrl string = 'https://{location}.aether.ms'

@description('DSR_ARM_AUDIENCE: audience of the token for Azure ML calls.')
param armAudience string = 'https://management.azure.com/.default'

@description('DSR_USE_DISCOVERY: use each workspace\'s discoveryUrl for its service hosts.')
param useDiscovery bool = true

@description('DSR_ALLOWED_HOSTS: the only hosts the bearer token is sent to (host, host:port, *.suffix), comma-separated.')
param allowedHosts string = 'management.azure.com,*.experiments.azureml.net,*.modelmanagement.azureml.net,*.aether.ms,*.api.azureml.ms,graph.microsoft.com,*.vault.azure.net'

@description('DSR_GRAPH_BASE_URL: Microsoft Graph, to resolve a subject to its object id, UPN and e-mail (the identity needs the Graph application permission User.Read.All, granted outside this template); empty = no resolution.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('DSR_MATCH_FIELDS: record fields that tie a record to a person, comma-separated dotted paths.')
param matchFields string = 'createdBy.userObjectId,createdBy.upn,systemData.createdBy,properties.properties.createdBy.userId,properties.properties.personalComputeInstanceSettings.assignedUser.objectId,CreatedBy.UserObjectId'

@description('DSR_TASK_TIME_BUDGET_SECONDS: a task yields and re-enqueues itself after this long.')
@minValue(30)
param taskTimeBudgetSeconds int = 240

@description('DSR_MAX_INPROCESS_RETRY_AFTER_SECONDS: a 429 asking for a longer wait is re-enqueued with a delay.')
@minValue(0)
param maxInprocessRetryAfterSeconds int = 5

@description('DSR_HTTP_TIMEOUT_SECONDS: read timeout of one Azure ML call.')
@minValue(1)
param httpTimeoutSeconds int = 30

@description('DSR_STATUS_RETRY_AFTER_SECONDS: Retry-After on 202 and on status answers.')
@minValue(1)
param statusRetryAfterSeconds int = 10

@description('DSR_RATE_READS_PER_SECOND: Azure ML reads per second (a number, decimals allowed).')
param rateReadsPerSecond string = '25'

@description('DSR_RATE_READ_BURST: burst of Azure ML reads.')
param rateReadBurst string = '250'

@description('DSR_RATE_DELETES_PER_SECOND: Azure ML deletes per second.')
param rateDeletesPerSecond string = '10'

@description('DSR_RATE_DELETE_BURST: burst of Azure ML deletes.')
param rateDeleteBurst string = '200'

@description('DSR_RATE_SHARED: the instances share those buckets through Table storage (table DsrBudget).')
param rateShared bool = true

@description('DSR_RATE_FALLBACK_INSTANCES: while the shared buckets cannot be reached, each instance spends its own buckets divided by this many instances.')
@minValue(1)
param rateFallbackInstances int = 4

// ---- HR offboarding: events on a queue start erasures without a ticket ----

@description('DSR_OFFBOARDING_QUEUE: the queue HR offboarding events arrive on (created in the product storage).')
param offboardingQueueName string = 'offboarding-events'

@description('DSR_OFFBOARDING_SCOPE: comma-separated workspace, resource group or subscription ids an offboarding erasure covers; empty = none configured.')
param offboardingScope string = ''

@description('DSR_OFFBOARDING_AUTO_APPROVE: true = an offboarding erasure starts without a second person\'s approval.')
param offboardingAutoApprove bool = false

@description('DSR_OFFBOARDING_EXPORT_FIRST: true = export the person\'s data before erasing it.')
param offboardingExportFirst bool = false

@description('DSR_OFFBOARDING_ARCHIVE_DAYS: days an offboarding export is kept.')
@minValue(1)
param offboardingArchiveDays int = 30

@description('DSR_OFFBOARDING_GRACE_HOURS: hours between the event and the erasure.')
@minValue(0)
param offboardingGraceHours int = 0

@description('DSR_OFFBOARDING_DEDUPE_HOURS: a repeated event for the same person within this many hours is ignored.')
@minValue(0)
param offboardingDedupeHours int = 72

@description('Object ids of the service principals (e.g. the HR system\'s) allowed to send offboarding events (Storage Queue Data Message Sender on that queue only).')
param offboardingSenderPrincipalIds array = []

// ---- Names ----

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  identity: 'id-dsr-${resourceToken}'
  storage: 'stdsr${resourceToken}'
  keyVault: 'kv-dsr-${resourceToken}'
  logAnalytics: 'log-dsr-${resourceToken}'
  applicationInsights: 'appi-dsr-${resourceToken}'
  plan: 'plan-dsr-${resourceToken}'
  functionApp: 'func-dsr-${resourceToken}'
  network: 'dsr-${resourceToken}'
  deploymentContainer: 'app-package'
}

// Where the custom role may be assigned: the target subscriptions, the target resource groups, and the
// resource group of each target workspace (a role cannot name a single resource as assignable scope).
var workspaceGroupIds = [for id in amlWorkspaceIds: join(take(split(id, '/'), 5), '/')]
var subscriptionScopes = [for id in amlSubscriptionIds: '/subscriptions/${id}']
var amlScopes = union(subscriptionScopes, amlResourceGroupIds, workspaceGroupIds)
var hasAmlTargets = length(amlScopes) > 0

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: names.deploymentContainer
    exportRetentionDays: exportRetentionDays
    auditAnchorRetentionDays: auditAnchorRetentionDays
    offboardingQueueName: offboardingQueueName
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    pseudonymKey: pseudonymKey
    auditKey: auditKey
    callbackSigningKey: callbackSigningKey
  }
}

module network 'app/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    name: names.network
    location: location
    tags: tags
    storageAccountId: storage.outputs.id
    keyVaultId: keyVault.outputs.id
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    pseudonymKeySecretName: keyVault.outputs.pseudonymKeySecretName
    auditKeySecretName: keyVault.outputs.auditKeySecretName
    signingKeyName: keyVault.outputs.signingKeyName
    callbackSigningKeySecretName: keyVault.outputs.callbackSigningKeySecretName
    offboardingQueueName: offboardingQueueName
    offboardingSenderPrincipalIds: offboardingSenderPrincipalIds
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    pseudonymKeySecretUri: keyVault.outputs.pseudonymKeySecretUri
    callbackSigningKeySecretUri: keyVault.outputs.callbackSigningKeySecretUri
    auditKeySecretUri: keyVault.outputs.auditKeySecretUri
    signingKeyId: keyVault.outputs.signingKeyId
    keyVaultAudience: keyVaultAudience
    callbackAllowedHosts: callbackAllowedHosts
    subnetId: network.outputs.appSubnetId
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    apiEntraClientId: apiEntraClientId
    apiAllowedClientApplications: apiAllowedClientApplications
    armBaseUrl: armBaseUrl
    experimentsBaseUrl: experimentsBaseUrl
    modelManagementBaseUrl: modelManagementBaseUrl
    pipelinesBaseUrl: pipelinesBaseUrl
    armAudience: armAudience
    useDiscovery: useDiscovery
    allowedHosts: allowedHosts
    graphBaseUrl: graphBaseUrl
    matchFields: matchFields
    taskTimeBudgetSeconds: taskTimeBudgetSeconds
    maxInprocessRetryAfterSeconds: maxInprocessRetryAfterSeconds
    httpTimeoutSeconds: httpTimeoutSeconds
    statusRetryAfterSeconds: statusRetryAfterSeconds
    autoApproveErasure: autoApproveErasure
    autoApproveWholeWorkspaceExport: autoApproveWholeWorkspaceExport
    allowWorkspaceDeletion: allowWorkspaceDeletion
    deleteVerifyAttempts: deleteVerifyAttempts
    workspacePurge: workspacePurge
    armWorkspaceDeleteApiVersion: armWorkspaceDeleteApiVersion
    armV2ApiVersion: armV2ApiVersion
    offboardingQueueName: offboardingQueueName
    offboardingScope: offboardingScope
    offboardingAutoApprove: offboardingAutoApprove
    offboardingExportFirst: offboardingExportFirst
    offboardingArchiveDays: offboardingArchiveDays
    offboardingGraceHours: offboardingGraceHours
    offboardingDedupeHours: offboardingDedupeHours
    entraIssuers: entraIssuers
    entraJwksUrl: entraJwksUrl
    entraAllowedHosts: entraAllowedHosts
    packageSasMinutes: packageSasMinutes
    packageRetentionDays: exportRetentionDays
    rateReadsPerSecond: rateReadsPerSecond
    rateReadBurst: rateReadBurst
    rateDeletesPerSecond: rateDeletesPerSecond
    rateDeleteBurst: rateDeleteBurst
    rateShared: rateShared
    rateFallbackInstances: rateFallbackInstances
  }
}

// ---- Azure ML: the custom role and its assignments at each target ----

module amlRole 'app/aml-role.bicep' = if (hasAmlTargets) {
  name: 'aml-role'
  params: {
    environmentName: environmentName
    assignableScopes: amlScopes
    allowWorkspaceDeletion: allowWorkspaceDeletion
  }
}

module amlWorkspaceAccess 'app/aml-access.bicep' = [
  for id in amlWorkspaceIds: {
    name: 'aml-ws-${uniqueString(id)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      principalId: identity.outputs.principalId
      roleDefinitionId: amlRole.outputs.id
      workspaceName: last(split(id, '/'))
    }
  }
]

module amlResourceGroupAccess 'app/aml-access.bicep' = [
  for id in amlResourceGroupIds: {
    name: 'aml-rg-${uniqueString(id)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      principalId: identity.outputs.principalId
      roleDefinitionId: amlRole.outputs.id
    }
  }
]

module amlSubscriptionAccess 'app/aml-access-subscription.bicep' = [
  for id in amlSubscriptionIds: {
    name: 'aml-sub-${uniqueString(id)}'
    scope: subscription(id)
    params: {
      principalId: identity.outputs.principalId
      roleDefinitionId: amlRole.outputs.id
    }
  }
]

// ---- Outputs (azd stores them in the environment) ----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output DSR_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output DSR_KEY_VAULT_NAME string = keyVault.outputs.name
output DSR_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output DSR_AML_ROLE_NAME string = hasAmlTargets ? amlRole.outputs.roleName : ''
output DSR_EGRESS_IP string = network.outputs.egressIpAddress
