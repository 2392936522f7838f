// The identity's roles on the product's own resources (this resource group). The Azure ML roles are in
// aml-access.bicep and aml-access-subscription.bicep: ARM creates a role assignment only from a deployment
// at the assignment's scope, so those are modules deployed at each target workspace, group or subscription.
// Every assignment is named guid(scope, principal, role), so a redeployment finds and keeps it.

@description('Object (principal) id of the Function App\'s user-assigned identity.')
param principalId string

@description('Name of the product storage account.')
param storageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Name of the Key Vault.')
param keyVaultName string

@description('Name of the Key Vault secret that holds the pseudonymisation key.')
param pseudonymKeySecretName string

@description('Name of the Key Vault secret that holds the audit chain key.')
param auditKeySecretName string

@description('Name of the Key Vault key that signs the package documents.')
param signingKeyName string

@description('Name of the Key Vault secret that holds the callback signing key; empty = callbacks off, no secret.')
param callbackSigningKeySecretName string = ''

@description('Queue of the HR offboarding events.')
param offboardingQueueName string

@description('Object ids of the service principals (e.g. the HR system\'s) that may send offboarding events.')
param offboardingSenderPrincipalIds array

// Built-in role definition ids.
var roles = {
  // Functions host state (AzureWebJobsStorage), the deployment package, the export packages (staged blocks),
  // and user delegation keys for read-only export links.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Queue triggers (dsr-plan, dsr-work, dsr-finalize) and the messages the app enqueues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Requests, tasks and idempotency keys (DsrRequests, DsrIdempotency).
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Telemetry to Application Insights with Entra authentication (local auth is off).
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // The HR system: add messages to the offboarding queue, nothing else.
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  // The Key Vault references of DSR_PSEUDONYM_KEY, DSR_AUDIT_KEY and DSR_CALLBACK_SIGNING_KEY: read those
  // secrets only.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // The package signing key (DSR_SIGNING_KEY_ID): read its public part and `sign` with it (the key's own
  // keyOps allow sign and verify only).
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource offboardingQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  name: '${storageAccountName}/default/${offboardingQueueName}'
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName

  resource pseudonymKeySecret 'secrets' existing = {
    name: pseudonymKeySecretName
  }

  resource auditKeySecret 'secrets' existing = {
    name: auditKeySecretName
  }

  resource signingKey 'keys' existing = {
    name: signingKeyName
  }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// Scoped to the one secret, not the vault.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::pseudonymKeySecret.id, principalId, roles.keyVaultSecretsUser)
  scope: vault::pseudonymKeySecret
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// The Key Vault reference of DSR_AUDIT_KEY: that one secret.
resource auditSecretUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::auditKeySecret.id, principalId, roles.keyVaultSecretsUser)
  scope: vault::auditKeySecret
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// Signing with the package key: scoped to that one key, not the vault.
resource signingKeyCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault::signingKey.id, principalId, roles.keyVaultCryptoUser)
  scope: vault::signingKey
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoUser)
  }
}

// The Key Vault reference of DSR_CALLBACK_SIGNING_KEY, when callbacks are on: that one secret too.
resource callbackSigningKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (!empty(callbackSigningKeySecretName)) {
  parent: vault
  name: callbackSigningKeySecretName
}

resource callbackSecretUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(callbackSigningKeySecretName)) {
  name: guid(callbackSigningKeySecret.id, principalId, roles.keyVaultSecretsUser)
  scope: callbackSigningKeySecret
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// Scoped to the offboarding queue: the HR system can add events there and read nothing.
resource offboardingSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for senderId in offboardingSenderPrincipalIds: {
    name: guid(offboardingQueue.id, senderId, roles.storageQueueDataMessageSender)
    scope: offboardingQueue
    properties: {
      principalId: senderId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataMessageSender)
    }
  }
]
