// App Service Authentication (Easy Auth) with Microsoft Entra ID in front of the HTTP API: a request
// without a valid bearer token for the API's app registration is answered 401 before it reaches the code.
// The function key is still required (function_app.py: AuthLevel.FUNCTION). Only deployed when
// apiEntraClientId is set; docs/deploy.md says how to create the app registration and check the result.

@description('Name of the Function App.')
param functionAppName string

@description('Client id of the Entra app registration that represents the API.')
param apiEntraClientId string

@description('Client ids of the applications allowed to call the API; empty = any holder of a token for the API.')
param apiAllowedClientApplications array

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName

  resource authSettings 'config' = {
    name: 'authsettingsV2'
    properties: {
      platform: {
        enabled: true
      }
      globalValidation: {
        requireAuthentication: true
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
          enabled: true
          registration: {
            clientId: apiEntraClientId
            openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          }
          validation: {
            allowedAudiences: [
              'api://${apiEntraClientId}'
              apiEntraClientId
            ]
            defaultAuthorizationPolicy: {
              allowedApplications: empty(apiAllowedClientApplications) ? null : apiAllowedClientApplications
            }
          }
        }
      }
    }
  }
}
