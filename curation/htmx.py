"""htmx conventions shared by the apps' views."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

# htmx stops polling when a response has this status (and still swaps it in).
HTMX_STOP_POLLING = 286


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
