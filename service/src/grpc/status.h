// The service edge's error handling: absl::Status mapped one-to-one to
// grpc::Status, and handler bodies from which no exception escapes.
#pragma once

#include <grpcpp/support/status.h>

#include <exception>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/strings.h"
#include "internal/log.h"

namespace driftwatch::service::grpc_api {

// Same code set, message kept.
grpc::Status ToGrpc(const absl::Status& s);

// Runs a handler body; nothing thrown inside reaches gRPC (INTERNAL, logged).
template <typename Body>
grpc::Status Guard(std::string_view method, Body&& body) {
  try {
    return ToGrpc(body());
  } catch (const std::exception& e) {
    internal::LogError("handler threw", {{"method", std::string(method)}, {"error", e.what()}});
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat(base::Sv(method), ": ", e.what()));
  } catch (...) {
    internal::LogError("handler threw", {{"method", std::string(method)}});
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat(base::Sv(method), ": internal error"));
  }
}

}  // namespace driftwatch::service::grpc_api
