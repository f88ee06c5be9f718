"""Async client for the Toloka REST API (aiohttp), built for a long-running daemon.

Not named ``toloka``: that is toloka-kit's import name. Public entry points:
:class:`TolokaClient` (endpoints), :class:`TolokaHttp`/:class:`HttpSettings`
(transport), :class:`RetryPolicy`, the records and the errors.
"""

from toloka_client.client import DEFAULT_ATTACHMENT_LIMIT, TolokaClient, operation_id_for
from toloka_client.errors import (
    AccessDenied,
    AttachmentTooLarge,
    AuthenticationError,
    ConflictState,
    InappropriateStatus,
    IncorrectAction,
    NotFound,
    OperationAlreadyExists,
    OperationFailed,
    ServerError,
    TolokaError,
    TooManyRequests,
    TransportError,
    UnexpectedResponse,
    ValidationError,
)
from toloka_client.http import HttpSettings, TolokaHttp, resolve_base_url
from toloka_client.records import (
    Assignment,
    Attachment,
    BatchResult,
    Operation,
    OperationLogItem,
    Page,
    Pool,
    Project,
    Requester,
    Skill,
    Solution,
    Task,
    UserBonus,
    UserSkill,
)
from toloka_client.retry import RetryPolicy

__all__ = [
    "DEFAULT_ATTACHMENT_LIMIT",
    "AccessDenied",
    "Assignment",
    "Attachment",
    "AttachmentTooLarge",
    "AuthenticationError",
    "BatchResult",
    "ConflictState",
    "HttpSettings",
    "InappropriateStatus",
    "IncorrectAction",
    "NotFound",
    "Operation",
    "OperationAlreadyExists",
    "OperationFailed",
    "OperationLogItem",
    "Page",
    "Pool",
    "Project",
    "Requester",
    "RetryPolicy",
    "ServerError",
    "Skill",
    "Solution",
    "Task",
    "TolokaClient",
    "TolokaError",
    "TolokaHttp",
    "TooManyRequests",
    "TransportError",
    "UnexpectedResponse",
    "UserBonus",
    "UserSkill",
    "ValidationError",
    "operation_id_for",
    "resolve_base_url",
]
