"""Pure building blocks: money, ids, clock, errors and limits. Standard library only."""
