# SPDX-License-Identifier: Apache-2.0
"""listen_streams: the coordinator's socket unit listens where its service would bind, addresses only."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.central_mcp.agents.plugins.filter.listen_streams import listen_streams


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        ([["127.0.0.1", 3000], ["127.0.0.1", 8000]], ["127.0.0.1:3000", "127.0.0.1:8000"]),
        ([["10.0.0.2", 3000], ["127.0.0.1", 3000], ["127.0.0.1", "8000"]],
         ["10.0.0.2:3000", "127.0.0.1:3000", "127.0.0.1:8000"]),
        ([["fd00::2", 3000], ["[::1]", 8000]], ["[fd00::2]:3000", "[::1]:8000"]),
        ([["localhost", 3000], ["127.0.0.1", 0]], []),  # a name binds itself; port 0 is no dashboard
        ([["127.0.0.1", 3000], ["127.0.0.1", 3000]], ["127.0.0.1:3000"]),
    ],
)  # fmt: skip
def test_listen_streams(endpoints, expected):
    assert listen_streams(endpoints) == expected


def test_a_bad_entry_is_named():
    with pytest.raises(AnsibleFilterError, match="'nope' is not"):
        listen_streams(["nope"])
