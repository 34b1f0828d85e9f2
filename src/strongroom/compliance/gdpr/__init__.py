"""GDPR rights: the export of everything held about a customer (Art. 15 and 20), the AML
record-keeping hold that refuses erasure (Art. 17(3)(b)) while the law says the records must be
kept, and the retention job that erases customers whose period has passed."""
