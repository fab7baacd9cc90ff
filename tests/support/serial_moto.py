"""moto's server with every request handled under one lock; arguments as for moto_server.

moto_server serves requests on parallel threads without locking its backends, and a cancelled
TransactWriteItems rolls back by restoring a copy of the whole table taken when it began,
wiping out whatever a concurrent request wrote meanwhile. DynamoDB itself never does that, so
tests that race two writes run moto serialised: they then test the store, not moto.
"""
import sys
import threading

import moto.server as server

lock = threading.Lock()


class Serialised(server.DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        with lock:
            return list(super().__call__(environ, start_response))


server.DomainDispatcherApplication = Serialised
server.main(sys.argv[1:])
