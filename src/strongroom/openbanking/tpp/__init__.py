"""Third-party providers (TPPs): the registered clients of the authorization server."""
