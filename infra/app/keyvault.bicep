// Key Vault for the app's keys: the HMAC key of the pseudonyms that stand in for a subject's identifiers in
// logs and indexes (DSR_PSEUDONYM_KEY), the HMAC key of the audit chain (DSR_AUDIT_KEY), both Key Vault
// references, the callback signing key when callbacks are on, and the EC P-256 key that signs manifest.json and
// erasure-record.json (DSR_SIGNING_KEY_ID; used through the Key Vault `sign` operation, its private part never
// leaves the vault). RBAC mode (no access policies), soft delete and purge protection on.

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

@description('The HMAC key of the audit chain (DSR_AUDIT_KEY): at least 32 characters, kept stable across deployments (a new key fails the verification of every earlier trail).')
@secure()
@minLength(32)
param auditKey string

@description('Name of the secret that holds the audit chain key.')
param auditKeySecretName string = 'dsr-audit-key'

@description('Name of the EC P-256 key that signs the package documents (ES256).')
param signingKeyName string = 'dsr-package-signing'

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

resource auditKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expired secret breaks the Key Vault reference and stops every audited change; a new key fails the verification of earlier trails, so it is rotated deliberately
  parent: vault
  name: auditKeySecretName
  properties: {
    value: auditKey
    contentType: 'text/plain; HMAC-SHA256 key of the audit chain'
  }
}

// The signing key: created in the vault (not importable, not exportable), sign and verify only. The app holds
// the Key Vault Crypto User role on this key alone (rbac.bicep) and calls `sign` with its managed identity.
resource signingKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  // checkov:skip=CKV_AZURE_40: an expired key stops every package from being written; auditors verify old packages with the published public key, so the key is rotated deliberately (docs/security.md)
  // checkov:skip=CKV_AZURE_112: an HSM-backed key (EC-HSM) needs the premium SKU; the standard vault keeps the key in software-protected Key Vault storage, which never releases it
  parent: vault
  name: signingKeyName
  properties: {
    kty: 'EC'
    curveName: 'P-256'
    keyOps: [
      'sign'
      'verify'
    ]
    attributes: {
      enabled: true
      exportable: false
    }
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
output auditKeySecretName string = auditKeySecret.name
output auditKeySecretUri string = '${vault.properties.vaultUri}secrets/${auditKeySecret.name}'
output signingKeyName string = signingKey.name
// Versionless key identifier: the app reads the current version (GET key) and signs with it.
output signingKeyId string = '${vault.properties.vaultUri}keys/${signingKey.name}'
// Empty when no callback signing key was given (callbacks off).
output callbackSigningKeySecretName string = hasCallbackSigningKey ? callbackSigningKeySecretName : ''
output callbackSigningKeySecretUri string = hasCallbackSigningKey ? '${vault.properties.vaultUri}secrets/${callbackSigningKeySecretName}' : ''
