"""kustomer_activations: sync records into Kustomer as Customers and Companies.

Update-or-create on a sync key (external id, email, or a custom field), one
record at a time or millions in a batch, with a sync and an async client
that share one I/O-free core::

    from kustomer_activations import KustomerClient

    with KustomerClient(org="acme") as client:  # API key from KUSTOMER_API_KEY
        print(client.check())
        report = client.customers.upsert_many(rows, key="externalId")
        print(report.summary())
"""

from ._core.clock import Clock, SystemClock
from ._core.config import ConfigurationError
from ._core.ratelimit import RateLimit
from ._core.response import ApiResponse
from ._version import __version__
from .check import SYNC_ROLES, ConnectionCheck
from .client import AsyncKustomerClient, KustomerClient
from .errors import (
    STATUS_ERRORS,
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CustomFieldError,
    ErrorDetail,
    InternalServerError,
    InvalidRecordError,
    KustomerError,
    MissingKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnknownCompanyLinkError,
    UnknownFieldError,
    UnprocessableEntityError,
)
from .mapping import Field, FieldMapping, MappedRecord
from .models import (
    Company,
    CompanyInput,
    Customer,
    CustomerInput,
    CustomSchema,
    CustomType,
    Email,
    Phone,
    SyncKey,
)
from .resources._base import AmbiguousMatchError
from .results import Outcome, UpsertResult
from .state import (
    AsyncStateStore,
    SqliteStateStore,
    StateError,
    StateLockLostError,
    StateSchemaError,
    StateStore,
    SyncAlreadyRunningError,
)
from .sync import (
    Progress,
    SyncAbortedError,
    SyncCancelledError,
    SyncFailuresError,
    SyncReport,
    read_csv,
    read_failures,
    read_jsonl,
)

__all__ = [
    "STATUS_ERRORS",
    "SYNC_ROLES",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AmbiguousMatchError",
    "ApiResponse",
    "AsyncKustomerClient",
    "AsyncStateStore",
    "AuthenticationError",
    "BadRequestError",
    "Clock",
    "Company",
    "CompanyInput",
    "ConfigurationError",
    "ConflictError",
    "ConnectionCheck",
    "CustomFieldError",
    "CustomSchema",
    "CustomType",
    "Customer",
    "CustomerInput",
    "Email",
    "ErrorDetail",
    "Field",
    "FieldMapping",
    "InternalServerError",
    "InvalidRecordError",
    "KustomerClient",
    "KustomerError",
    "MappedRecord",
    "MissingKeyError",
    "NotFoundError",
    "Outcome",
    "PermissionDeniedError",
    "Phone",
    "Progress",
    "RateLimit",
    "RateLimitError",
    "SqliteStateStore",
    "StateError",
    "StateLockLostError",
    "StateSchemaError",
    "StateStore",
    "SyncAbortedError",
    "SyncAlreadyRunningError",
    "SyncCancelledError",
    "SyncFailuresError",
    "SyncKey",
    "SyncReport",
    "SystemClock",
    "UnknownCompanyLinkError",
    "UnknownFieldError",
    "UnprocessableEntityError",
    "UpsertResult",
    "__version__",
    "read_csv",
    "read_failures",
    "read_jsonl",
]
