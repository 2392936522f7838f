"""A local simulator of the Azure Machine Learning REST APIs and of the managed-identity endpoint."""

from devtools.amlsim.fixture import DEMO_TENANT_ID, DEMO_WORKSPACES, build_tenant, demo_tenant, large_tenant
from devtools.amlsim.server import Simulator
from devtools.amlsim.state import FAMILIES, Principal, Tenant

__all__ = [
    "DEMO_TENANT_ID",
    "DEMO_WORKSPACES",
    "FAMILIES",
    "Principal",
    "Simulator",
    "Tenant",
    "build_tenant",
    "demo_tenant",
    "large_tenant",
]
