// Key Vault for the one secret the app needs: the HMAC key of the pseudonyms that stand in for a subject's
// identifiers in logs and indexes (app setting DSR_PSEUDONYM_KEY, a Key Vault reference). RBAC mode (no
// access policies), soft delete and purge protection on.

@description('Name of the vault (3-24 characters).')
param name string

@description('Region of the vault.')
param location string

@description('Tags of the vault.')
param tags object

@description('The pseudonymisation key: at least 32 characters, kept stable across deployments (see docs/deploy.md).')
@secure()
@minLength(32)
param pseudonymKey string

@description('Name of the secret that holds the pseudonymisation key.')
param pseudonymKeySecretName string = 'dsr-pseudonym-key'

@description('The HMAC key that signs callbacks to requesters (DSR_CALLBACK_SIGNING_KEY); empty = callbacks off, no secret.')
@secure()
param callbackSigningKey string = ''

@description('Name of the secret that holds the callback signing key.')
param callbackSigningKeySecretName string = 'dsr-callback-signing-key'

var hasCallbackSigningKey = !empty(callbackSigningKey)

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    // The app reads the secret through the private endpoint of network.bicep; Resource Manager (control
    // plane) still writes it at deployment time.
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      bypass: 'None'
      defaultAction: 'Deny'
    }
  }
}

resource pseudonymKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expired secret breaks the Key Vault reference and stops the app, and a new key changes every pseudonym; the key is rotated deliberately (docs/deploy.md)
  parent: vault
  name: pseudonymKeySecretName
  properties: {
    value: pseudonymKey
    contentType: 'text/plain; HMAC-SHA256 key for pseudonyms'
  }
}

resource callbackSigningKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (hasCallbackSigningKey) {
  // checkov:skip=CKV_AZURE_41: an expired secret breaks the Key Vault reference and stops every callback; receivers hold the same key, so it is rotated deliberately with them (docs/callbacks.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov's Bicep reader does not look inside the body of a conditional resource
  parent: vault
  name: callbackSigningKeySecretName
  properties: {
    value: callbackSigningKey
    contentType: 'text/plain; HMAC-SHA256 key for callback signatures'
  }
}

output id string = vault.id
output name string = vault.name
output pseudonymKeySecretName string = pseudonymKeySecret.name
// Versionless: the app follows a rotated secret (App Service re-reads references within 24 hours or on restart).
output pseudonymKeySecretUri string = '${vault.properties.vaultUri}secrets/${pseudonymKeySecret.name}'
// Empty when no callback signing key was given (callbacks off).
output callbackSigningKeySecretName string = hasCallbackSigningKey ? callbackSigningKeySecretName : ''
output callbackSigningKeySecretUri string = hasCallbackSigningKey ? '${vault.properties.vaultUri}secrets/${callbackSigningKeySecretName}' : ''
