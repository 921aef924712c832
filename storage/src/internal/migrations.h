// Schema migrations of the SQLite store. Each entry of the list is applied
// once, in order, in its own transaction, and recorded in schema_migrations;
// entries are append-only (never edit a shipped one, add the next).
//
// Thread safety: call with exclusive use of `conn` (at open time).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "internal/sqlite.h"

namespace driftwatch::storage::internal {

// Highest schema version this build knows.
int64_t LatestSchemaVersion();

// Applies pending migrations. A database written by a newer build (higher
// version than LatestSchemaVersion) fails with FAILED_PRECONDITION naming
// both versions, without touching the file. `now_ms` stamps applied_at_ms.
absl::Status ApplyMigrations(Connection* conn, int64_t now_ms);

}  // namespace driftwatch::storage::internal
