"""The case queue: decisions a person must take (risk reviews here; screening and monitoring
alerts later), each approved or declined by an analyst, every decision an audit leaf."""
