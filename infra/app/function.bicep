// The Function App: Flex Consumption (FC1, Linux), Python 3.11, running as the user-assigned identity.
// App settings are exactly the settings the code reads (shared/core/settings.py) plus the two the platform
// needs for Application Insights with Microsoft Entra authentication; tests/infra checks the set.

@description('Name of the Function App (also its host name: <name>.azurewebsites.net).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags of the plan and the app; the app also gets azd-service-name.')
param tags object

@description('azd service name of the app (azure.yaml).')
param serviceName string

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Name of the product storage account (AzureWebJobsStorage and the product data).')
param storageAccountName string

@description('Blob container of the deployment package.')
param deploymentContainerName string

@description('Connection string of Application Insights (not a secret: local auth is off).')
param applicationInsightsConnectionString string

@description('Versionless URI of the Key Vault secret that holds the pseudonymisation key.')
param pseudonymKeySecretUri string

@description('Versionless URI of the Key Vault secret that holds the callback signing key; empty = callbacks off.')
param callbackSigningKeySecretUri string

@description('Versionless URI of the Key Vault secret that holds the audit chain key.')
param auditKeySecretUri string

@description('DSR_SIGNING_KEY_ID: versionless identifier of the Key Vault key that signs the package documents.')
param signingKeyId string

@description('DSR_KEY_VAULT_AUDIENCE: audience of the token for Key Vault calls.')
param keyVaultAudience string

@description('Subnet for virtual network integration (delegated to Microsoft.App/environments).')
param subnetId string

@description('Maximum instances the plan scales the app to (40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory of one instance in MB.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int

@description('Client id of the Entra app registration that protects the HTTP API; empty = function keys only.')
param apiEntraClientId string

@description('Client ids of the applications allowed to call the API when Entra authentication is on; empty = any application of the tenant holding a token for the API.')
param apiAllowedClientApplications array

// Settings read by shared/core/settings.py (values or defaults passed from main.bicep).
param armBaseUrl string
param experimentsBaseUrl string
param modelManagementBaseUrl string
param pipelinesBaseUrl string
param armAudience string
param useDiscovery bool
param allowedHosts string
param graphBaseUrl string
param matchFields string
param taskTimeBudgetSeconds int
param maxInprocessRetryAfterSeconds int
param httpTimeoutSeconds int
param statusRetryAfterSeconds int
param autoApproveErasure bool
param autoApproveWholeWorkspaceExport bool
param allowWorkspaceDeletion bool
param deleteVerifyAttempts int
param workspacePurge bool
param armWorkspaceDeleteApiVersion string
param armV2ApiVersion string
param offboardingQueueName string
param offboardingScope string
param offboardingAutoApprove bool
param offboardingExportFirst bool
param offboardingArchiveDays int
param offboardingGraceHours int
param offboardingDedupeHours int
param entraIssuers string
param entraJwksUrl string
param entraAllowedHosts string
param packageSasMinutes int
param packageRetentionDays int
param rateReadsPerSecond string
param rateReadBurst string
param rateDeletesPerSecond string
param rateDeleteBurst string
param rateShared bool
param rateFallbackInstances int
param callbackAllowedHosts string

var storageSuffix = environment().suffixes.storage
var entraAuthEnabled = !empty(apiEntraClientId)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions; the work is queue-driven and at-least-once, so losing an instance or a zone delays tasks and loses none
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the HTTP API is the entry point of the ticketing system and the privacy team; every route needs a function key (and an Entra token when apiEntraClientId is set)
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys and Entra bearer tokens, not client certificates
  // checkov:skip=CKV_AZURE_212: numberOfWorkers does not exist on Flex Consumption (the platform scales each function); queue work survives the loss of an instance
  // checkov:skip=CKV_AZURE_213: no anonymous health route yet (every route is AuthLevel.FUNCTION, so a probe without a key reads as unhealthy); scripts/smoke.py checks health after each deployment
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Exactly the settings the code reads (shared/core/settings.py) plus the platform's two for Application
      // Insights with Entra authentication; tests/infra/test_settings_contract.py checks the set.
      appSettings: [
        // The Functions host's storage connection (STORAGE_CONNECTION = AzureWebJobsStorage), identity-based;
        // the app reads the three service URIs too.
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: 'https://${storageAccountName}.blob.${storageSuffix}'
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: 'https://${storageAccountName}.queue.${storageSuffix}'
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: 'https://${storageAccountName}.table.${storageSuffix}'
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // Platform: telemetry to Application Insights, authenticated with the identity (local auth is off).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // The product (shared/core/settings.py).
        {
          name: 'DSR_IDENTITY_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'DSR_ARM_BASE_URL'
          value: armBaseUrl
        }
        {
          name: 'DSR_EXPERIMENTS_BASE_URL'
          value: experimentsBaseUrl
        }
        {
          name: 'DSR_MODELMANAGEMENT_BASE_URL'
          value: modelManagementBaseUrl
        }
        {
          name: 'DSR_PIPELINES_BASE_URL'
          value: pipelinesBaseUrl
        }
        {
          name: 'DSR_ARM_AUDIENCE'
          value: armAudience
        }
        {
          name: 'DSR_USE_DISCOVERY'
          value: useDiscovery ? 'true' : 'false'
        }
        {
          name: 'DSR_ALLOWED_HOSTS'
          value: allowedHosts
        }
        {
          name: 'DSR_GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'DSR_MATCH_FIELDS'
          value: matchFields
        }
        {
          name: 'DSR_PSEUDONYM_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${pseudonymKeySecretUri})'
        }
        // Evidence integrity: the audit chain's HMAC key (a Key Vault reference) and the Key Vault key that
        // signs manifest.json and erasure-record.json (through Key Vault's `sign`, with the identity's token).
        {
          name: 'DSR_AUDIT_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${auditKeySecretUri})'
        }
        {
          name: 'DSR_SIGNING_KEY_ID'
          value: signingKeyId
        }
        {
          name: 'DSR_KEY_VAULT_AUDIENCE'
          value: keyVaultAudience
        }
        {
          name: 'DSR_TASK_TIME_BUDGET_SECONDS'
          value: string(taskTimeBudgetSeconds)
        }
        {
          name: 'DSR_MAX_INPROCESS_RETRY_AFTER_SECONDS'
          value: string(maxInprocessRetryAfterSeconds)
        }
        {
          name: 'DSR_HTTP_TIMEOUT_SECONDS'
          value: string(httpTimeoutSeconds)
        }
        {
          name: 'DSR_STATUS_RETRY_AFTER_SECONDS'
          value: string(statusRetryAfterSeconds)
        }
        {
          name: 'DSR_AUTO_APPROVE_ERASURE'
          value: autoApproveErasure ? 'true' : 'false'
        }
        {
          name: 'DSR_AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT'
          value: autoApproveWholeWorkspaceExport ? 'true' : 'false'
        }
        {
          name: 'DSR_ALLOW_WORKSPACE_DELETION'
          value: allowWorkspaceDeletion ? 'true' : 'false'
        }
        // The X-MS-CLIENT-PRINCIPAL headers are trusted only when Easy Auth is in front of the app and sets them.
        {
          name: 'DSR_TRUST_EASYAUTH_HEADERS'
          value: entraAuthEnabled ? 'true' : 'false'
        }
        {
          name: 'DSR_DELETE_VERIFY_ATTEMPTS'
          value: string(deleteVerifyAttempts)
        }
        // Workspace DELETE (D1): purge (forceToPurge=true, api-version 2024-04-01 or later) or soft delete.
        {
          name: 'DSR_WORKSPACE_PURGE'
          value: workspacePurge ? 'true' : 'false'
        }
        {
          name: 'DSR_ARM_WORKSPACE_DELETE_API_VERSION'
          value: armWorkspaceDeleteApiVersion
        }
        // api-version of the v2 (ARM) families under a workspace and of the compute family (E3/E4).
        {
          name: 'DSR_ARM_V2_API_VERSION'
          value: armV2ApiVersion
        }
        // Client-side rate limits of the Azure ML calls (token buckets per subscription and host).
        {
          name: 'DSR_RATE_READS_PER_SECOND'
          value: rateReadsPerSecond
        }
        {
          name: 'DSR_RATE_READ_BURST'
          value: rateReadBurst
        }
        {
          name: 'DSR_RATE_DELETES_PER_SECOND'
          value: rateDeletesPerSecond
        }
        {
          name: 'DSR_RATE_DELETE_BURST'
          value: rateDeleteBurst
        }
        // Shared by every instance through table DsrBudget; split this many ways while it cannot be reached.
        {
          name: 'DSR_RATE_SHARED'
          value: rateShared ? 'true' : 'false'
        }
        {
          name: 'DSR_RATE_FALLBACK_INSTANCES'
          value: string(rateFallbackInstances)
        }
        // HR offboarding events start erasures without a ticket.
        {
          name: 'DSR_OFFBOARDING_QUEUE'
          value: offboardingQueueName
        }
        {
          name: 'DSR_OFFBOARDING_SCOPE'
          value: offboardingScope
        }
        {
          name: 'DSR_OFFBOARDING_AUTO_APPROVE'
          value: offboardingAutoApprove ? 'true' : 'false'
        }
        {
          name: 'DSR_OFFBOARDING_EXPORT_FIRST'
          value: offboardingExportFirst ? 'true' : 'false'
        }
        {
          name: 'DSR_OFFBOARDING_ARCHIVE_DAYS'
          value: string(offboardingArchiveDays)
        }
        {
          name: 'DSR_OFFBOARDING_GRACE_HOURS'
          value: string(offboardingGraceHours)
        }
        {
          name: 'DSR_OFFBOARDING_DEDUPE_HOURS'
          value: string(offboardingDedupeHours)
        }
        // The Entra tenant of the subjects and of the API's callers (this deployment's tenant).
        {
          name: 'DSR_TENANT_ID'
          value: tenant().tenantId
        }
        // The app validates Entra bearer tokens itself when apiEntraClientId is set (audience: the API).
        {
          name: 'DSR_REQUIRE_ENTRA_TOKEN'
          value: entraAuthEnabled ? 'true' : 'false'
        }
        {
          name: 'DSR_ENTRA_AUDIENCES'
          value: entraAuthEnabled ? 'api://${apiEntraClientId},${apiEntraClientId}' : ''
        }
        {
          name: 'DSR_ENTRA_ISSUERS'
          value: entraIssuers
        }
        {
          name: 'DSR_ENTRA_JWKS_URL'
          value: entraJwksUrl
        }
        {
          name: 'DSR_ENTRA_ALLOWED_HOSTS'
          value: entraAllowedHosts
        }
        // Lifetime of the read-only user delegation SAS links to export packages.
        {
          name: 'DSR_PACKAGE_SAS_MINUTES'
          value: string(packageSasMinutes)
        }
        // Days an export package is kept after its request ended: the purge timer, as the lifecycle rule.
        {
          name: 'DSR_PACKAGE_RETENTION_DAYS'
          value: string(packageRetentionDays)
        }
        // Signed callbacks to a request's callbackUrl: the hosts it may name, and the signing key (a Key Vault
        // reference, empty while callbacks are off; the app refuses to start with hosts and no key).
        {
          name: 'DSR_CALLBACK_ALLOWED_HOSTS'
          value: callbackAllowedHosts
        }
        {
          name: 'DSR_CALLBACK_SIGNING_KEY'
          value: empty(callbackSigningKeySecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${callbackSigningKeySecretUri})'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: 'https://${storageAccountName}.blob.${storageSuffix}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// App Service Authentication (Easy Auth) with Microsoft Entra ID in front of the HTTP API, on when
// apiEntraClientId names the API's app registration: a request without a valid bearer token for it is
// answered 401 before it reaches the code. The function key is still required (AuthLevel.FUNCTION).
// Off (platform.enabled false) otherwise, so a redeployment also removes authentication set by hand.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config as a site's web configuration; this one is authsettingsV2
  // (authentication only), and the site's own settings are checked on resource app above:
  // checkov:skip=CKV_AZURE_13: authentication is this resource; checkov looks for the V1 property enabled, V2 has platform.enabled
  // checkov:skip=CKV_AZURE_222: public network access is a site property (resource app, where its skip says why)
  // checkov:skip=CKV_AZURE_63: HTTP logging is a site property; the app logs to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages are a site property; the API answers problem+json itself
  // checkov:skip=CKV_AZURE_66: failed request tracing is a site property; requests are traced in Application Insights
  // checkov:skip=CKV_AZURE_80: .NET version is a site property; this is a Python app
  // checkov:skip=CKV_AZURE_88: Azure Files is a site property; Flex Consumption mounts no file share
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: entraAuthEnabled
    }
    globalValidation: {
      requireAuthentication: entraAuthEnabled
      unauthenticatedClientAction: 'Return401'
    }
    httpSettings: {
      requireHttps: true
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: entraAuthEnabled
        registration: {
          clientId: entraAuthEnabled ? apiEntraClientId : null
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: entraAuthEnabled ? ['api://${apiEntraClientId}', apiEntraClientId] : []
          defaultAuthorizationPolicy: {
            allowedApplications: empty(apiAllowedClientApplications) ? null : apiAllowedClientApplications
          }
        }
      }
    }
  }
}

// No publishing with user names and passwords: deployments authenticate with Microsoft Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output uri string = 'https://${app.properties.defaultHostName}'
