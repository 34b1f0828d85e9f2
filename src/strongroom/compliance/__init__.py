"""Compliance: sanctions and PEP screening (sanctions/), AML transaction monitoring (aml/), KYC
verification, tiers and limits (kyc/), GDPR rights (gdpr/) and automated controls
(controls/). Alerts of screening and monitoring land in the case queue (cases/)."""
