from __future__ import annotations

import logging

from core.errors import error_response, from_exception, internal_error

logger = logging.getLogger("gateway.errors")


class JsonErrorMiddleware:
    """Any exception a Django view lets escape becomes the contract's JSON error.

    Runs whatever DEBUG says, so no traceback ever reaches a client; the
    traceback goes to the server log instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        err = from_exception(exception)
        if err is None:
            logger.exception("Unhandled error on %s %s", request.method, request.path)
            err = internal_error()
        return error_response(err)
