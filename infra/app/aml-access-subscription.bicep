// Assigns the custom Azure ML role to the Function App's identity on a whole subscription (every Azure ML
// workspace in it). Deployed once per target subscription by main.bicep.
targetScope = 'subscription'

@description('Object (principal) id of the Function App\'s user-assigned identity.')
param principalId string

@description('Resource id of the custom role definition (aml-role.bicep).')
param roleDefinitionId string

resource onSubscription 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionId)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionId
  }
}
