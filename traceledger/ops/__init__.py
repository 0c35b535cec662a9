"""Operations on a whole ledger: backup, restore and time-shard rotation."""
