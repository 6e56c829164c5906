# SPDX-License-Identifier: Apache-2.0
"""Documentation shared by the gce_* modules: where the VM is and how to reach the Compute Engine API.

Used with ``extends_documentation_fragment: [central_mcp.agents.gce]``; the
options match ``GCE_AUTH_ARGUMENT_SPEC`` in ``module_utils/gce.py`` (less
``timeout``, which each module documents for what it waits on).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project:
    description: Project ID of the VM (or of the disk).
    type: str
    required: true
  zone:
    description: Zone of the VM (or of the disk), e.g. C(us-central1-a).
    type: str
    required: true
  auth_kind:
    description:
      - V(application) uses the controller's application default credentials
        (C(gcloud auth application-default login), C(GOOGLE_APPLICATION_CREDENTIALS),
        or the metadata server of a GCE controller).
      - V(serviceaccount) reads the JSON key in O(service_account_file).
      - V(accesstoken) uses O(access_token) as it is (it is not refreshed).
    type: str
    choices: [application, serviceaccount, accesstoken]
    default: application
  service_account_file:
    description: Path on the controller of a service account's JSON key, for O(auth_kind=serviceaccount).
    type: path
  access_token:
    description: An OAuth access token with the compute scope, for O(auth_kind=accesstoken). Keep it in Vault.
    type: str
  api_endpoint:
    description:
      - Base URL of the Compute Engine v1 API (a private endpoint, or a local
        emulator in tests).
    type: str
    default: https://compute.googleapis.com/compute/v1
requirements:
  - google-auth >= 2.20 (on the controller)
  - requests >= 2.28 (on the controller)
"""
