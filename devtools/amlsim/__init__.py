"""A local simulator of the Azure Machine Learning REST APIs and of the App Service managed-identity endpoint."""
