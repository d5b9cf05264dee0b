// Status propagation helpers. Abseil publishes no status macros (Google's are internal), so
// ropewire carries these two.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ROPEWIRE_CONCAT_INNER(a, b) a##b
#define ROPEWIRE_CONCAT(a, b) ROPEWIRE_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status ropewire_status_ = (expr);            \
    if (!ropewire_status_.ok()) return ropewire_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr())` binds the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(ROPEWIRE_CONCAT(ropewire_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)    \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
