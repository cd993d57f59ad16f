"""Singer `tap-stripe` against the weft sandbox: the peer side of
benches/peer/sliced_peers.sh.

    HTTP_PROXY=http://127.0.0.1:PORT python tap_stripe_sandbox.py [--account-shim] -- \
        --config config.json [--discover | --catalog catalog.json]

tap-stripe has no base-URL setting and its request timer only accepts URLs
of `api.stripe.com` (it takes the stream name from them with a regex), so
the Stripe SDK is pointed at `http://api.stripe.com` and the caller's
HTTP_PROXY sends every request to the sandbox on loopback (the sandbox
serves absolute-form requests like any other). Nothing leaves the machine.

tap-stripe (3.3.0) starts with a connectivity check,
`stripe.Account.retrieve(account_id)`, and logs
`account.settings.dashboard.display_name`. The sandbox's `/v1/account` has
no `settings` (and it does not serve `/v1/accounts/{id}`), so the unmodified
tap stops there with `AttributeError: settings`. `--account-shim` adds
`settings.dashboard.display_name` to that one answer in the SDK; every other
request and all of the tap's paging, windowing and record handling are the
tap's own.
"""

import sys


def main() -> None:
    argv = sys.argv[1:]
    shim = "--account-shim" in argv
    argv = [a for a in argv if a != "--account-shim"]
    if argv[:1] == ["--"]:
        argv = argv[1:]

    import stripe

    stripe.api_base = "http://api.stripe.com"
    if shim:
        retrieve = stripe.Account.retrieve.__func__

        def retrieve_with_settings(cls, id=None, api_key=None, **params):
            account = retrieve(cls, id, api_key, **params)
            if "settings" not in account:
                account["settings"] = stripe.stripe_object.StripeObject.construct_from(
                    {"dashboard": {"display_name": "weft sandbox"}}, stripe.api_key
                )
            return account

        stripe.Account.retrieve = classmethod(retrieve_with_settings)

    import tap_stripe

    sys.argv = [sys.argv[0], *argv]
    sys.exit(tap_stripe.main())


if __name__ == "__main__":
    main()
