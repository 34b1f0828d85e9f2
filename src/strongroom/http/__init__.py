"""The HTTP edge: the ASGI app factory, middleware, errors and pagination."""
