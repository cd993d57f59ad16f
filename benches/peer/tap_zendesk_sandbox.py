"""Singer `tap-zendesk` against the weft sandbox: benches/peer/real_clients.sh.

    ZENDESK_SANDBOX_URL=http://127.0.0.1:PORT python tap_zendesk_sandbox.py -- \
        --config config.json [--discover | --catalog catalog.json]

tap-zendesk (2.8) builds every URL as `https://{subdomain}.zendesk.com/...`
and has no base-URL setting, and the sandbox serves plain HTTP on loopback.
This wrapper changes only where requests go: before the tap runs, requests'
HTTP adapter connects any request for a `*.zendesk.com` host to
ZENDESK_SANDBOX_URL instead (same path, query and Host, with
`X-Forwarded-Proto: https`, so the sandbox's next-page links keep the
tap's `https://{subdomain}.zendesk.com` form). Authentication (the OAuth
`access_token`, sent as `Authorization: Bearer`), paging, the incremental
exports and all record handling are the tap's own, unmodified. Nothing
leaves the machine.
"""

import os
import sys
from urllib.parse import urlsplit, urlunsplit


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    base = urlsplit(os.environ["ZENDESK_SANDBOX_URL"])

    import requests.adapters

    send = requests.adapters.HTTPAdapter.send

    def to_sandbox(self, request, **kwargs):
        url = urlsplit(request.url)
        if not (url.hostname and url.hostname.endswith(".zendesk.com")):
            return send(self, request, **kwargs)
        # The request keeps its URL for the tap and zenpy; only the
        # connection goes to the sandbox, which builds its links from Host
        # and X-Forwarded-Proto (as behind a TLS-terminating proxy).
        original = request.url
        request.headers["Host"] = url.netloc
        request.headers["X-Forwarded-Proto"] = url.scheme
        request.url = urlunsplit((base.scheme, base.netloc, url.path, url.query, url.fragment))
        try:
            response = send(self, request, **kwargs)
        finally:
            request.url = original
        response.url = original
        return response

    requests.adapters.HTTPAdapter.send = to_sandbox

    import tap_zendesk

    sys.argv = [sys.argv[0]] + argv
    sys.exit(tap_zendesk.main())


if __name__ == "__main__":
    main()
