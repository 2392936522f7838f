// Assigns the custom Azure ML role to the Function App's identity on one target: a workspace (when
// workspaceName is set) or the whole resource group this module is deployed at. Deployed once per target
// by main.bicep, at the target's resource group (ARM creates an assignment only from its own scope).

@description('Object (principal) id of the Function App\'s user-assigned identity.')
param principalId string

@description('Resource id of the custom role definition (aml-role.bicep).')
param roleDefinitionId string

@description('Workspace to assign the role on; empty = the resource group.')
param workspaceName string = ''

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = if (!empty(workspaceName)) {
  name: workspaceName
}

resource onWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(workspaceName)) {
  name: guid(workspace.id, principalId, roleDefinitionId)
  scope: workspace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionId
  }
}

resource onResourceGroup 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (empty(workspaceName)) {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionId
  }
}
