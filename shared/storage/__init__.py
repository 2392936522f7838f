"""The product's own storage: requests and tasks in Table storage, work on Storage queues, export blobs and
their read links (user delegation SAS), every client on the managed identity.

May import: core.
"""
