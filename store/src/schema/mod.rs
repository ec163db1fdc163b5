//! The keyspace: a subspace per record kind on the tuple layer, secondary indexes written in
//! the same transaction as their record, and typed access to records.
