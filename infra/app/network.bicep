// Private networking: the app runs integrated into a virtual network, reaches its
// storage account and Key Vault through private endpoints (their public network access is off), and goes
// out to Azure Resource Manager and the Azure ML service hosts through a NAT gateway with one static IP
// (an address a workspace's firewall can allow).

@description('Name prefix of the network resources.')
param name string

@description('Region of the network.')
param location string

@description('Tags of the network resources.')
param tags object

@description('Resource id of the product storage account.')
param storageAccountId string

@description('Resource id of the Key Vault.')
param keyVaultId string

@description('Address space of the virtual network.')
param addressPrefix string = '10.60.0.0/22'

@description('Subnet the app is integrated into (delegated to Microsoft.App/environments).')
param appSubnetPrefix string = '10.60.0.0/24'

@description('Subnet of the private endpoints.')
param endpointSubnetPrefix string = '10.60.1.0/24'

var storageServices = [
  'blob'
  'queue'
  'table'
]
var storageZones = [for service in storageServices: 'privatelink.${service}.${environment().suffixes.storage}']
// Public cloud name of the Key Vault private DNS zone.
var vaultZone = 'privatelink.vaultcore.azure.net'

resource egressIp 'Microsoft.Network/publicIPAddresses@2023-11-01' = {
  name: '${name}-egress-ip'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource nat 'Microsoft.Network/natGateways@2023-11-01' = {
  name: '${name}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: egressIp.id
      }
    ]
  }
}

resource appNsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: '${name}-app-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource endpointNsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: '${name}-pe-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: '${name}-vnet'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          natGateway: {
            id: nat.id
          }
          networkSecurityGroup: {
            id: appNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: endpointSubnetPrefix
          networkSecurityGroup: {
            id: endpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource storageDnsZones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for zone in storageZones: {
    name: zone
    location: 'global'
    tags: tags
  }
]

resource storageDnsLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (zone, i) in storageZones: {
    parent: storageDnsZones[i]
    name: '${name}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnet.id
      }
    }
  }
]

resource storageEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [
  for (service, i) in storageServices: {
    name: '${name}-st-${service}-pe'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: vnet.properties.subnets[1].id
      }
      privateLinkServiceConnections: [
        {
          name: 'storage-${service}'
          properties: {
            privateLinkServiceId: storageAccountId
            groupIds: [
              service
            ]
          }
        }
      ]
    }
  }
]

resource storageDnsGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [
  for (service, i) in storageServices: {
    parent: storageEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: service
          properties: {
            privateDnsZoneId: storageDnsZones[i].id
          }
        }
      ]
    }
  }
]

resource vaultDnsZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: vaultZone
  location: 'global'
  tags: tags
}

resource vaultDnsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: vaultDnsZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource vaultEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: '${name}-kv-pe'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: vnet.properties.subnets[1].id
    }
    privateLinkServiceConnections: [
      {
        name: 'vault'
        properties: {
          privateLinkServiceId: keyVaultId
          groupIds: [
            'vault'
          ]
        }
      }
    ]
  }
}

resource vaultDnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: vaultEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'vault'
        properties: {
          privateDnsZoneId: vaultDnsZone.id
        }
      }
    ]
  }
}

output appSubnetId string = vnet.properties.subnets[0].id
output egressIpAddress string = egressIp.properties.ipAddress
