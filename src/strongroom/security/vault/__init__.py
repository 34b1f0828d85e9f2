"""The card vault: tokenization of card numbers under envelope encryption (docs/cards.md)."""
