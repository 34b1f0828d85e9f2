"""Double-entry ledger: model (pure rules), engine (batch-native posting), store, service."""
