#include "grpc/status.h"

namespace driftwatch::service::grpc_api {

// absl and gRPC number the canonical codes alike (0 .. 16).
static_assert(static_cast<int>(absl::StatusCode::kInvalidArgument) ==
              static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
static_assert(static_cast<int>(absl::StatusCode::kFailedPrecondition) ==
              static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
              static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(s.code());
  const grpc::StatusCode grpc_code = code >= 1 && code <= 16 ? static_cast<grpc::StatusCode>(code)
                                                             : grpc::StatusCode::UNKNOWN;
  return grpc::Status(grpc_code, std::string(s.message()));
}

}  // namespace driftwatch::service::grpc_api
