#include "internal/sqlite.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace driftwatch::storage::internal {

absl::Status SqliteStatus(int rc, absl::string_view op, absl::string_view message) {
  std::string text = absl::StrCat(op, ": ", message, " (sqlite code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(text);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(text);
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(text);
    case SQLITE_READONLY:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
      return absl::FailedPreconditionError(text);
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return absl::InvalidArgumentError(text);
    case SQLITE_ABORT:
    case SQLITE_INTERRUPT:
      return absl::AbortedError(text);
    default:
      return absl::InternalError(text);
  }
}

// --- Statement ---------------------------------------------------------------

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindDouble(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindInt64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindBlob(int index, std::string_view value) {
  // A zero-length blob, not NULL, for empty strings: columns stay non-null.
  int rc = sqlite3_bind_blob64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                               SQLITE_STATIC);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::BindText(int index, std::string_view value) {
  int rc = sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                               SQLITE_STATIC, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

absl::StatusOr<bool> Statement::Step(absl::string_view op) {
  if (bind_rc_ != SQLITE_OK) return SqliteStatus(bind_rc_, op, sqlite3_errstr(bind_rc_));
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, op, sqlite3_errmsg(db_));
}

absl::Status Statement::Run(absl::string_view op) {
  absl::StatusOr<bool> row = Step(op);
  if (!row.ok()) return row.status();
  return absl::OkStatus();  // a RETURNING-less write never yields rows
}

int64_t Statement::ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }

std::string_view Statement::ColumnBlob(int column) const {
  // Blob pointer first, then the size (the documented safe order).
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return {};
  return std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
}

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

void Statement::Reset() {
  // The return code repeats the last Step's error, already reported.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
  in_use_ = false;
}

ScopedStatement::~ScopedStatement() {
  if (stmt_ != nullptr) stmt_->Reset();
}

// --- Connection --------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                             int busy_timeout_ms) {
  sqlite3* db = nullptr;
  // NOMUTEX: each connection is confined to one thread at a time by the store.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(rc, absl::StrCat("open ", path),
                                       db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);  // harmless on null
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<Connection> conn(new Connection(db));
  rc = sqlite3_busy_timeout(db, busy_timeout_ms);
  if (rc != SQLITE_OK) return conn->LastError(rc, "set busy_timeout");
  return conn;
}

Connection::~Connection() {
  cache_.clear();  // finalize first, or close_v2 would defer the close
  sqlite3_close_v2(db_);
}

absl::Status Connection::LastError(int rc, absl::string_view op) const {
  return SqliteStatus(rc, op, sqlite3_errmsg(db_));
}

absl::Status Connection::Exec(const std::string& sql, absl::string_view op) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status status = SqliteStatus(rc, op, message != nullptr ? message : sqlite3_errstr(rc));
  sqlite3_free(message);
  return status;
}

absl::StatusOr<ScopedStatement> Connection::Prepare(std::string_view sql, absl::string_view op) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return LastError(rc, op);
    }
    if (stmt == nullptr) return absl::InternalError(absl::StrCat(op, ": empty SQL"));
    it = cache_.emplace(std::move(key), std::make_unique<Statement>(stmt, db_)).first;
  }
  Statement* stmt = it->second.get();
  if (stmt->in_use_) {
    return absl::InternalError(absl::StrCat(
        op, ": statement already in use: ", absl::string_view(sql.data(), sql.size())));
  }
  stmt->in_use_ = true;
  return ScopedStatement(stmt);
}

absl::StatusOr<std::string> Connection::QueryText(std::string_view sql, absl::string_view op) {
  absl::StatusOr<ScopedStatement> stmt = Prepare(sql, op);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = (*stmt)->Step(op);
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat(op, ": no result row"));
  return (*stmt)->ColumnString(0);
}

// --- Transaction -------------------------------------------------------------

absl::StatusOr<Transaction> Transaction::BeginImmediate(Connection* conn, absl::string_view op) {
  absl::StatusOr<ScopedStatement> begin = conn->Prepare("BEGIN IMMEDIATE", op);
  if (!begin.ok()) return begin.status();
  if (absl::Status s = (*begin)->Run(op); !s.ok()) return s;
  return Transaction(conn);
}

absl::Status Transaction::Commit(absl::string_view op) {
  absl::StatusOr<ScopedStatement> commit = conn_->Prepare("COMMIT", op);
  if (!commit.ok()) return commit.status();
  if (absl::Status s = (*commit)->Run(op); !s.ok()) return s;  // destructor rolls back
  conn_ = nullptr;
  return absl::OkStatus();
}

Transaction::~Transaction() {
  // SQLite may already have rolled back on its own (e.g. after an I/O
  // error); a second ROLLBACK would only fail.
  if (conn_ == nullptr || !conn_->InTransaction()) return;
  absl::StatusOr<ScopedStatement> rollback = conn_->Prepare("ROLLBACK", "rollback");
  if (rollback.ok()) (*rollback)->Run("rollback").IgnoreError();
}

}  // namespace driftwatch::storage::internal
