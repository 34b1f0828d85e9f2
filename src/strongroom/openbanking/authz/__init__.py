"""The authorization server (docs/openbanking.md "Authorization server"): deployment-wide,
its issuer the public base URL. `model` (pure) holds its rules, `store` its SQL, `service` the
server (PAR, the decision's code, the token endpoint, the resource check), `api` its routes and
`wiring` what the composition root needs."""
