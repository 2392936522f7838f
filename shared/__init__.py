"""The domain package of the Azure ML data-subject-request service.

Importable and runnable without the Functions host: function_app.py only hands triggers over to it.
"""
