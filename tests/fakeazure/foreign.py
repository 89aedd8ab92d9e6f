"""The foreign origin (HTTPS, its own port): where hostile nextLinks and
redirects point.  It answers like a certificate list page and records every
request, in particular whether it carried a bearer token (a client that
follows a foreign nextLink must not send its token there).
"""

import time

from httpbase import BaseHandler


class ForeignHandler(BaseHandler):

    def route(self):
        auth = self.headers.get("Authorization")
        self.state.record_foreign({
            "method": self.command,
            "path": self.url_path,
            "query": self.raw_query,
            "auth": bool(auth),
            "bearer": bool(auth and auth[:7].lower() == "bearer "),
            "time": self.started,
        })
        base = self.fake.urls["foreign"]
        now = int(time.time())
        self.send_json(200, {
            "value": [{
                "id": "%s/certificates/foreign-injected" % base,
                "x5t": "AAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "attributes": {"enabled": True, "nbf": now - 3600, "exp": now + 86400,
                               "created": now - 3600, "updated": now - 3600},
                "subject": "",
            }],
            "nextLink": None,
        })
