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

output id string = vault.id
output name string = vault.name
output pseudonymKeySecretName string = pseudonymKeySecret.name
// Versionless: the app follows a rotated secret (App Service re-reads references within 24 hours or on restart).
output pseudonymKeySecretUri string = '${vault.properties.vaultUri}secrets/${pseudonymKeySecret.name}'
