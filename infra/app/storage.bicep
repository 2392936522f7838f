// The product's storage account: the Functions host's own state (AzureWebJobsStorage), the product's
// queues and tables, the export packages, and the deployment package. Keyless: shared-key access is off,
// so every client (host, app, deployment) authenticates with Microsoft Entra ID; public network access is off.

@description('Name of the storage account (3-24 lowercase letters and digits).')
param name string

@description('Region of the account.')
param location string

@description('Tags of the account.')
param tags object

@description('Blob container that holds the Function App deployment package.')
param deploymentContainerName string

@description('Queue of the HR offboarding events (app setting DSR_OFFBOARDING_QUEUE).')
param offboardingQueueName string

@description('Days an export package (container dsr-exports) is kept before the lifecycle rule deletes it.')
@minValue(1)
param exportRetentionDays int

@description('Days each version of an audit anchor blob (container dsr-audit-anchors) stays immutable.')
@minValue(1)
param auditAnchorRetentionDays int

// Names the code uses (shared/core/settings.py: PLAN_QUEUE, WORK_QUEUE, FINALIZE_QUEUE, CALLBACK_QUEUE, REQUESTS_TABLE,
// IDEMPOTENCY_TABLE, EVENTS_TABLE, SUBJECTS_TABLE, AUDIT_TABLE, CALLBACKS_TABLE, BUDGET_TABLE, EXPORT_CONTAINER,
// AUDIT_ANCHOR_CONTAINER; the offboarding queue is the setting
// DSR_OFFBOARDING_QUEUE). The poison queues are the host's: a message that failed maxDequeueCount
// (host.json) times moves to <queue>-poison.
var queueNames = [
  'dsr-plan'
  'dsr-plan-poison'
  'dsr-work'
  'dsr-work-poison'
  'dsr-finalize'
  'dsr-finalize-poison'
  'dsr-callbacks'
  'dsr-callbacks-poison'
  offboardingQueueName
  '${offboardingQueueName}-poison'
]
var tableNames = [
  'DsrRequests'
  'DsrIdempotency'
  'DsrEvents'
  'DsrSubjects'
  'DsrAudit'
  'DsrCallbacks'
  'DsrBudget'
]
var exportContainerName = 'dsr-exports'
var auditAnchorContainerName = 'dsr-audit-anchors'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // Three copies in the region and three in its paired region (same geography): the requests and tasks
    // survive a regional outage; deletions (lifecycle rule, erasure) replicate too.
    name: 'Standard_GZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Reached only through the private endpoints of network.bicep (the app is integrated into that network).
    // Resource Manager still creates the queues, tables and containers below: that is the control plane.
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      // Trusted Azure services (e.g. Azure Monitor) only; no public network.
      bypass: 'AzureServices'
      defaultAction: 'Deny'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // Version-level immutability (the audit anchors) needs blob versioning on the account. Previous versions
    // of every other block blob are deleted a day after they were replaced (lifecycle rule below), so a
    // deleted export package does not live on as a version.
    isVersioningEnabled: true
  }
}

resource exportContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: exportContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The audit anchors (shared/evidence/audit.py): one append blob per request with the head of its audit chain
// after every entry. Version-level immutability (WORM): a version cannot be deleted or overwritten for
// auditAnchorRetentionDays, while appends to the append blob are allowed. Lock the policy after the first
// deployment (docs/security.md, O2): until then an account owner can still shorten or remove it.
resource auditAnchorContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: auditAnchorContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: {
      enabled: true
    }
  }
}

resource auditAnchorPolicy 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: auditAnchorContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditAnchorRetentionDays
    allowProtectedAppendWrites: true
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

// Export packages hold personal data: they are deleted once the retention period has passed.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-export-packages'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${exportContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: exportRetentionDays
                }
              }
            }
          }
        }
        {
          // Blob versioning is on for the audit anchors: a replaced or deleted block blob (an export package
          // purged, the host's state) keeps no previous version past a day. Append blobs (the anchors) are
          // not block blobs, and their versions are immutable anyway.
          name: 'delete-previous-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
            }
            actions: {
              version: {
                delete: {
                  daysAfterCreationGreaterThan: 1
                }
              }
            }
          }
        }
      ]
    }
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output exportContainerName string = exportContainer.name
output auditAnchorContainerName string = auditAnchorContainer.name
output deploymentContainerName string = deploymentContainer.name
