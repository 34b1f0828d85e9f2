"""Automated compliance controls: each control (checks.py) examines the deployment and answers
pass, fail, not applicable or error with its evidence (model.py); a run is a stored report
(store.py, service.py), served by /v1/compliance/report (api.py) and written by `strongroom
compliance check` as Markdown or HTML and JSON."""
