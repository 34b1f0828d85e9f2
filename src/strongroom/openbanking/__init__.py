"""Open banking: UK Open Banking v4.0 resources and a FAPI 2.0 style authorization server."""
