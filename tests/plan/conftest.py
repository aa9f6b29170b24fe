"""Stand-ins the plan tests run against (all on 127.0.0.1, started by the tests)."""

from tests.fixtures.hf_hub import hub_env, mock_hub  # noqa: F401  (pytest fixtures)
from tests.fixtures.object_stores import gcs_emulator, gcs_server, moto_endpoint, s3_server  # noqa: F401  # noqa: F401
