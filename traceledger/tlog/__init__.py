"""Pure transparency-log code: RFC 9162 Merkle trees, C2SP tiles, leaves, signed notes,
checkpoints and cosignatures. No I/O, no database: anyone auditing the log can reuse it."""
