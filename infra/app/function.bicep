// The Function App: Flex Consumption (FC1, Linux), Python 3.11, running as the user-assigned identity.
// App settings are exactly the settings the code reads (shared/settings.py) plus the two the platform
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

// Settings read by shared/settings.py (values or defaults passed from main.bicep).
param armBaseUrl string
param experimentsBaseUrl string
param modelManagementBaseUrl string
param pipelinesBaseUrl string
param armAudience string
param useDiscovery bool
param allowedHosts string
param matchFields string
param taskTimeBudgetSeconds int
param maxInprocessRetryAfterSeconds int
param httpTimeoutSeconds int
param statusRetryAfterSeconds int

var storageSuffix = environment().suffixes.storage

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

  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      // The Functions host's storage connection (STORAGE_CONNECTION = AzureWebJobsStorage), identity-based;
      // the app reads the three service URIs too.
      AzureWebJobsStorage__blobServiceUri: 'https://${storageAccountName}.blob.${storageSuffix}'
      AzureWebJobsStorage__queueServiceUri: 'https://${storageAccountName}.queue.${storageSuffix}'
      AzureWebJobsStorage__tableServiceUri: 'https://${storageAccountName}.table.${storageSuffix}'
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      // Platform: telemetry to Application Insights, authenticated with the identity (local auth is off).
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
      // The product (shared/settings.py).
      DSR_IDENTITY_CLIENT_ID: identityClientId
      DSR_ARM_BASE_URL: armBaseUrl
      DSR_EXPERIMENTS_BASE_URL: experimentsBaseUrl
      DSR_MODELMANAGEMENT_BASE_URL: modelManagementBaseUrl
      DSR_PIPELINES_BASE_URL: pipelinesBaseUrl
      DSR_ARM_AUDIENCE: armAudience
      DSR_USE_DISCOVERY: useDiscovery ? 'true' : 'false'
      DSR_ALLOWED_HOSTS: allowedHosts
      DSR_MATCH_FIELDS: matchFields
      DSR_PSEUDONYM_KEY: '@Microsoft.KeyVault(SecretUri=${pseudonymKeySecretUri})'
      DSR_TASK_TIME_BUDGET_SECONDS: string(taskTimeBudgetSeconds)
      DSR_MAX_INPROCESS_RETRY_AFTER_SECONDS: string(maxInprocessRetryAfterSeconds)
      DSR_HTTP_TIMEOUT_SECONDS: string(httpTimeoutSeconds)
      DSR_STATUS_RETRY_AFTER_SECONDS: string(statusRetryAfterSeconds)
    }
  }

  // No publishing with user names and passwords: deployments authenticate with Microsoft Entra ID.
  resource ftpCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: {
      allow: false
    }
  }

  resource scmCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }
}

// App Service Authentication (Entra ID) in front of the HTTP API, when an app registration is given.
module apiAuth 'api-auth.bicep' = if (!empty(apiEntraClientId)) {
  name: 'api-auth'
  params: {
    functionAppName: app.name
    apiEntraClientId: apiEntraClientId
    apiAllowedClientApplications: apiAllowedClientApplications
  }
}

output id string = app.id
output name string = app.name
output uri string = 'https://${app.properties.defaultHostName}'
