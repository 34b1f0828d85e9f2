"""Risk: real-time fraud scoring of payments, a gate of the transfer pipeline (docs/risk.md).

Features computed online from the payments the ledger posted (risk.features, the same code that
computes them for training), declarative rules (risk.rules), a gradient-boosted model with tree
SHAP explanations (risk.trainer, risk.artefact), and the gate that decides allow, review or block
for a whole batch at once (risk.gate). Reviews go to the case queue (cases/).
"""
