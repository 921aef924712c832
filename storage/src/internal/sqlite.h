// Small RAII wrappers over the SQLite3 C API, private to the storage module:
// Connection (one sqlite3*), a per-connection cache of prepared statements
// keyed by SQL text, ScopedStatement (resets a cached statement when the
// caller is done with it) and Transaction (rolls back unless committed).
//
// Thread safety: none of these are thread-safe. A Connection and everything
// obtained from it must be used by one thread at a time; the store guarantees
// that with a mutex (writer) or a lease (readers).
//
// Failure modes: every SQLite error becomes an absl::Status whose message is
// "<operation>: <sqlite message>"; corruption maps to DATA_LOSS, a lock held
// past busy_timeout to UNAVAILABLE (see SqliteStatus).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace driftwatch::storage::internal {

// Maps an SQLite result code to a status carrying `op` and the message.
absl::Status SqliteStatus(int rc, absl::string_view op, absl::string_view message);

// A prepared statement owned by a Connection's cache. Bind* calls use
// 1-based indices; blob/text bindings do not copy, so the bytes must outlive
// the next Reset (they always do: statements are reset at scope exit).
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void BindInt64(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindNull(int index);
  void BindBlob(int index, std::string_view value);
  void BindText(int index, std::string_view value);

  // Advances the statement: true when a row is available, false when done.
  // A failed bind earlier surfaces here.
  absl::StatusOr<bool> Step(absl::string_view op);
  // Steps once and expects completion (INSERT/UPDATE/DELETE/BEGIN...).
  absl::Status Run(absl::string_view op);

  int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  // Valid until the next Step or Reset.
  std::string_view ColumnBlob(int column) const;
  std::string ColumnString(int column) const { return std::string(ColumnBlob(column)); }
  bool ColumnIsNull(int column) const;

  // Ends the current execution (releasing its read snapshot) and clears
  // bindings so no borrowed pointer stays behind.
  void Reset();

 private:
  friend class Connection;
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  int bind_rc_ = SQLITE_OK;  // first failed bind, reported by Step
  bool in_use_ = false;      // guards against nesting the same cached SQL
};

// A cached statement borrowed for one execution; resets it on destruction.
class ScopedStatement {
 public:
  explicit ScopedStatement(Statement* stmt) : stmt_(stmt) {}
  ScopedStatement(ScopedStatement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  ScopedStatement& operator=(ScopedStatement&&) = delete;
  ScopedStatement(const ScopedStatement&) = delete;
  ~ScopedStatement();

  Statement* operator->() const { return stmt_; }
  Statement& operator*() const { return *stmt_; }

 private:
  Statement* stmt_;
};

// One SQLite connection and its statement cache.
class Connection {
 public:
  // Opens `path` read-write, creating it if needed, and sets busy_timeout.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path,
                                                          int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements without results (DDL, PRAGMA setters).
  absl::Status Exec(const std::string& sql, absl::string_view op);
  // Returns the cached statement for `sql`, preparing it on first use.
  // Fails if the same SQL is already borrowed (a nesting bug).
  absl::StatusOr<ScopedStatement> Prepare(std::string_view sql, absl::string_view op);
  // Runs a single-row, single-column query such as a PRAGMA and returns
  // the text of that column.
  absl::StatusOr<std::string> QueryText(std::string_view sql, absl::string_view op);

  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  absl::Status LastError(int rc, absl::string_view op) const;

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  // Declared after db_ so statements are finalized before the close.
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// BEGIN IMMEDIATE ... COMMIT. The destructor rolls back an uncommitted
// transaction, so every early return undoes the partial work.
class Transaction {
 public:
  // Takes the write lock now (waiting up to busy_timeout), so a conflicting
  // writer fails here rather than half-way through.
  static absl::StatusOr<Transaction> BeginImmediate(Connection* conn, absl::string_view op);
  Transaction(Transaction&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  // On success the transaction is durable as far as `synchronous` allows.
  absl::Status Commit(absl::string_view op);

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;  // null once committed or moved from
};

}  // namespace driftwatch::storage::internal
