"""The product's own storage, every client on the managed identity: the account's clients, queue sends and
blob path segments (clients), requests and tasks in Table storage (store), and the export blobs' read links
(links: user delegation SAS).

May import: core.
"""
