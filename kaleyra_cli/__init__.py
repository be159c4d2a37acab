"""kwa: send WhatsApp replies through Kaleyra's WhatsApp API v2.

Library use::

    from kaleyra_cli import KaleyraClient, build_reply

    request, problems = build_reply(to="+919876543210", body="hi", context="wamid.ABC")
    with KaleyraClient(base_url="https://api.in.kaleyra.io", sid=SID, api_key=KEY,
                       wa_number="+911234567890") as client:
        result = client.send_reply(request)  # SendResult(message_id=...)

Names are imported lazily so that ``import kaleyra_cli`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .client import KaleyraClient, SendResult
    from .errors import ApiError, ExitCode, KwaError, NetworkError, OutcomeUnknownError, Problem, UsageError, ValidationError
    from .message import ReplyRequest, build_reply, build_reply_from_payload, normalize_number

_LAZY = {
    "KaleyraClient": "client",
    "SendResult": "client",
    "ApiError": "errors",
    "ExitCode": "errors",
    "KwaError": "errors",
    "NetworkError": "errors",
    "OutcomeUnknownError": "errors",
    "Problem": "errors",
    "UsageError": "errors",
    "ValidationError": "errors",
    "ReplyRequest": "message",
    "build_reply": "message",
    "build_reply_from_payload": "message",
    "normalize_number": "message",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kaleyra_cli' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
