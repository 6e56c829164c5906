# SPDX-License-Identifier: Apache-2.0
"""What every part of the emulated API shares: resource URLs, times and Google's error format."""

from __future__ import annotations

from datetime import UTC, datetime

API = "https://www.googleapis.com/compute/v1"


class ApiError(Exception):
    """An error the API answers with: HTTP status, reason and message, in Google's error format."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "global"):
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain

    def body(self) -> dict:
        error = {"message": self.message, "domain": self.domain, "reason": self.reason}
        return {"error": {"code": self.status, "message": self.message, "errors": [error]}}


def not_found(resource: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{resource}' was not found")


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def zone_link(project: str, zone: str) -> str:
    return f"{API}/projects/{project}/zones/{zone}"
