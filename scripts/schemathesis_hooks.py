"""schemathesis hooks for scripts/schemathesis: who each request is made as.

Every request is made as the owner of a workspace (its access token comes
from the script), except those of the operations that end sessions or
change the account (logout, ending sessions, password and profile
changes): they act as a second account, so that ending a session cannot
sign the rest of the run out. Once one of them has ended the second
account's session, every later request with its token would be answered
401 and those operations would be tested no further: its provider signs
the second account in again whenever a request is answered 401 (and
schemathesis repeats the request with the new token).
"""
import itertools
import json
import os
import urllib.request

import schemathesis

SECOND_ACCOUNT_PATHS = r"^/api/auth/(me|password|sessions.*|logout)$"

# The generated requests include many failed logins from 127.0.0.1, which
# the server throttles (30 attempts per client address in 5 minutes). The
# server of this run trusts X-Forwarded-For (--trust-proxy), so each
# sign-in below comes from a documentation address of its own (RFC 5737;
# only a header value, never dialled) and is not refused for the
# generated ones.
SOURCES = itertools.cycle([f"{net}.{host}" for net in ("192.0.2", "198.51.100", "203.0.113")
                           for host in range(1, 255)])


@schemathesis.auth().skip_for(path_regex=SECOND_ACCOUNT_PATHS)
class Owner:
    def get(self, case, ctx):
        return os.environ["COFORM_CONTRACT_TOKEN"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.auth().apply_to(path_regex=SECOND_ACCOUNT_PATHS)
class SecondAccount:
    def get(self, case, ctx):
        body = json.dumps({
            "email": os.environ["COFORM_CONTRACT_SECOND_EMAIL"],
            "password": os.environ["COFORM_CONTRACT_PASSWORD"],
        }).encode()
        request = urllib.request.Request(
            os.environ["COFORM_CONTRACT_BASE"] + "/api/auth/login",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Forwarded-For": next(SOURCES)},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)["accessToken"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
