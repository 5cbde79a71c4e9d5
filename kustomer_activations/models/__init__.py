"""Records read from and written to Kustomer: customers, companies, inputs, sync keys."""

from .company import Company
from .contact import Email, Phone
from .custom import CUSTOM_STR_MAX, CustomType, coerce_custom, custom_type, same_custom_value
from .customer import Customer
from .inputs import UNSET, CompanyInput, CustomerInput, Unset
from .metadata import CustomAttribute, CustomSchema
from .sync_key import SyncKey, SyncKeyKind
from .validation import (
    COMPANY_FIELDS,
    CUSTOM_MAX_KEYS,
    CUSTOMER_FIELDS,
    DATETIME_FIELDS,
    ObjectType,
    validate_company_payload,
    validate_customer_payload,
    validate_payload,
    writable_fields,
)

__all__ = [
    "COMPANY_FIELDS",
    "CUSTOMER_FIELDS",
    "CUSTOM_MAX_KEYS",
    "CUSTOM_STR_MAX",
    "DATETIME_FIELDS",
    "UNSET",
    "Company",
    "CompanyInput",
    "CustomAttribute",
    "CustomSchema",
    "CustomType",
    "Customer",
    "CustomerInput",
    "Email",
    "ObjectType",
    "Phone",
    "SyncKey",
    "SyncKeyKind",
    "Unset",
    "coerce_custom",
    "custom_type",
    "same_custom_value",
    "validate_company_payload",
    "validate_customer_payload",
    "validate_payload",
    "writable_fields",
]
