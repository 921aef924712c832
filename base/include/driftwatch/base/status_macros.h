// Abseil 20220623 has Status/StatusOr but no propagation macros; these two
// are ours, for every module.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DW_CONCAT_INNER_(a, b) a##b
#define DW_CONCAT_(a, b) DW_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define DW_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status dw_status_ = (expr);           \
    if (!dw_status_.ok()) return dw_status_;      \
  } while (0)

// `DW_ASSIGN_OR_RETURN(auto x, F());` assigns the value of an absl::StatusOr
// or returns its status from the enclosing function.
#define DW_ASSIGN_OR_RETURN(lhs, expr) \
  DW_ASSIGN_OR_RETURN_IMPL_(DW_CONCAT_(dw_statusor_, __LINE__), lhs, expr)
#define DW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()
