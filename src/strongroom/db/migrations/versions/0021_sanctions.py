"""Sanctions screening: versioned list snapshots, screenings, dismissals and the blocking index.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

Lists are public and deployment-wide (shared by every tenant). `sanctions_list_versions` has a
row per loaded version of a list (source, version 1, 2, ...): its content hash, when and by whom
it was loaded, how many entries, and the diff counts against the version before.
`sanctions_entries` holds each entry (its JSON and fingerprint) with the versions it was current
in (`last_version` NULL: current), so a version costs only what changed; `sanctions_changes` the
diff of each version (added, changed, removed entry ids).

Per tenant: `sanctions_subjects` the screening status of each customer and counterparty (a keyed
hash of its screened name, never the name), `sanctions_results` a score per (subject, entry) at
or above the alert threshold, `sanctions_dismissals` the reviewed false positives (the subject's
name digest and the entry's fingerprint at review: a change of either revives the alert), and
`sanctions_subject_keys` the blocking index for re-screening: keyed hashes of phonetic keys of
each subject's name tokens.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sanctions_list_versions",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("loaded_at", sa.BigInteger, nullable=False),
        sa.Column("loaded_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "sanctions_entries",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("entry_id", sa.String(128), primary_key=True),
        sa.Column("first_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_version", sa.Integer, nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("sanctions_entries_current", "sanctions_entries", ["source", "last_version"])
    op.create_table(
        "sanctions_changes",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String(128), primary_key=True),
        sa.Column("change", sa.String(8), nullable=False),
    )
    op.create_table(
        "sanctions_subjects",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("name_digest", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("best_score", sa.Float, nullable=False),
        sa.Column("screened_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sanctions_results",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("entry_id", sa.String(128), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("list_version", sa.Integer, nullable=False),
        sa.Column("name_digest", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("screened_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sanctions_dismissals",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("entry_id", sa.String(128), primary_key=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("name_digest", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sanctions_subject_keys",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(80), primary_key=True),
    )
    op.create_index(
        "sanctions_subject_keys_subject", "sanctions_subject_keys", ["tenant_id", "subject"]
    )


def downgrade() -> None:
    op.drop_index("sanctions_subject_keys_subject", "sanctions_subject_keys")
    op.drop_table("sanctions_subject_keys")
    op.drop_table("sanctions_dismissals")
    op.drop_table("sanctions_results")
    op.drop_table("sanctions_subjects")
    op.drop_table("sanctions_changes")
    op.drop_index("sanctions_entries_current", "sanctions_entries")
    op.drop_table("sanctions_entries")
    op.drop_table("sanctions_list_versions")
