#!/usr/bin/python3
"""Checks a SAML Response with pysaml2 acting as the service provider.

Usage: pysaml2_sp_check.py IDP_METADATA SP_ENTITY_ID ACS_URL RESPONSE_B64_FILE

pysaml2 (Debian python3-pysaml2) is configured as an SP that trusts the
IdP metadata (and so its signing certificates), wants signed assertions and
accepts unsolicited (IdP-initiated) responses. It verifies the signature
with xmlsec1, the audience, the recipient/destination and the times.
Prints one JSON line: {"ok": true, "name_id": ..., "attributes": {...}}
or {"ok": false, "error": "..."}; exits 0 either way (1 on a setup error).
"""
import json
import sys
import tempfile

from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import SPConfig


def main():
    idp_md, entity_id, acs, resp_file = sys.argv[1:5]
    with open(resp_file) as f:
        b64 = f.read().strip()
    conf = SPConfig()
    conf.load({
        "entityid": entity_id,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {"local": [idp_md]},
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
            "allow_unsolicited": True,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "authn_requests_signed": False,
        }},
        "allow_unknown_attributes": True,
    })
    client = Saml2Client(config=conf)
    try:
        r = client.parse_authn_request_response(b64, BINDING_HTTP_POST)
    except Exception as e:  # pysaml2 raises many types; each is a refusal
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e)}))
        return
    if r is None:
        print(json.dumps({"ok": False, "error": "no response"}))
        return
    print(json.dumps({"ok": True, "name_id": r.name_id.text if r.name_id else None,
                      "attributes": r.get_identity()}))


if __name__ == "__main__":
    main()
