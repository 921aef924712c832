#include "reports/uploaded_profile.h"

#include <cmath>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"

namespace driftwatch::service::reports {
namespace {

using base::Sv;
using detectors::NumericSummary;
using detectors::Profile;

// The number of rows every column agrees on; INVALID_ARGUMENT naming the
// first column that disagrees, or when there are none.
absl::StatusOr<int64_t> RowCount(const RegisteredModel& model, const v1::ReferenceProfile& ref) {
  int64_t n = -1;
  auto expect = [&n](int64_t size, std::string_view field) -> absl::Status {
    if (n < 0) n = size;
    if (size != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.", Sv(field), " has ", size, " values, expected ", n));
    }
    return absl::OkStatus();
  };
  for (const v1::NumericColumn& col : ref.numeric()) {
    DW_RETURN_IF_ERROR(expect(col.values_size(), absl::StrCat("numeric[\"", col.name(), "\"]")));
  }
  for (const v1::CategoricalColumn& col : ref.categorical()) {
    DW_RETURN_IF_ERROR(
        expect(col.codes_size(), absl::StrCat("categorical[\"", col.name(), "\"].codes")));
  }
  const int scores = model.score_count();
  if (ref.scores_size() > 0) {
    if (scores == 0 || ref.scores_size() % scores != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.scores has ", ref.scores_size(),
                       " values, not a multiple of the model's ", scores, " scores"));
    }
    DW_RETURN_IF_ERROR(expect(ref.scores_size() / scores, "scores (per score)"));
  }
  if (n <= 0) return absl::InvalidArgumentError("baseline.profile holds no rows");
  if (ref.weights_size() > 0) DW_RETURN_IF_ERROR(expect(ref.weights_size(), "weights"));
  for (int i = 0; i < ref.weights_size(); ++i) {
    const double w = ref.weights(i);
    if (!std::isfinite(w) || !(w > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.weights[", i, "] = ", w, " is not a finite number > 0"));
    }
  }
  return n;
}

void AddNumeric(NumericSummary& s, double x, double w) {
  if (std::isnan(x)) {
    s.AddNull(w);
  } else {
    s.Add(x, w);  // counts +-Inf as non-finite
  }
}

// The feature a column names, once; INVALID_ARGUMENT otherwise.
absl::StatusOr<int> ColumnFeature(std::optional<int> feature, std::string_view kind,
                                  const std::string& column, std::vector<bool>* seen,
                                  const RegisteredModel& model) {
  if (!feature) {
    return absl::InvalidArgumentError(absl::StrCat("baseline.profile.", Sv(kind), " column \"",
                                                   column, "\" is not a ", Sv(kind),
                                                   " feature of ", model.label()));
  }
  if ((*seen)[*feature]) {
    return absl::InvalidArgumentError(
        absl::StrCat("baseline.profile.", Sv(kind), " column \"", column, "\" appears twice"));
  }
  (*seen)[*feature] = true;
  return *feature;
}

absl::Status AddCategoricalColumn(const v1::CategoricalColumn& col, int64_t n,
                                  const v1::ReferenceProfile& ref,
                                  detectors::CategoricalSummary* summary) {
  for (int64_t i = 0; i < n; ++i) {
    const double w = ref.weights_size() > 0 ? ref.weights(i) : 1.0;
    const int32_t code = col.codes(i);
    if (code == -1) {
      summary->AddMissing(w);
    } else if (code < -1 || code >= col.dictionary_size()) {
      return absl::InvalidArgumentError(absl::StrCat("baseline.profile.categorical[\"",
                                                     col.name(), "\"].codes[", i, "] = ", code,
                                                     " is outside its dictionary"));
    } else {
      summary->Add(col.dictionary(code), w);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Profile> ProfileFromReference(const RegisteredModel& model,
                                             const v1::ReferenceProfile& ref) {
  DW_ASSIGN_OR_RETURN(const int64_t n, RowCount(model, ref));
  auto weight = [&ref](int64_t i) { return ref.weights_size() > 0 ? ref.weights(i) : 1.0; };
  Profile profile(model.layout());
  std::vector<bool> seen_numeric(model.numeric_count());
  std::vector<bool> seen_categorical(model.categorical_count());
  for (const v1::NumericColumn& col : ref.numeric()) {
    DW_ASSIGN_OR_RETURN(int f, ColumnFeature(model.NumericIndex(col.name()), "numeric",
                                             col.name(), &seen_numeric, model));
    for (int64_t i = 0; i < n; ++i) AddNumeric(profile.numeric()[f], col.values(i), weight(i));
  }
  for (const v1::CategoricalColumn& col : ref.categorical()) {
    DW_ASSIGN_OR_RETURN(int f, ColumnFeature(model.CategoricalIndex(col.name()), "categorical",
                                             col.name(), &seen_categorical, model));
    DW_RETURN_IF_ERROR(AddCategoricalColumn(col, n, ref, &profile.categorical()[f]));
  }
  if (ref.scores_size() > 0) {
    for (int s = 0; s < model.score_count(); ++s) {
      for (int64_t i = 0; i < n; ++i) {
        AddNumeric(profile.scores()[s], ref.scores(static_cast<int>(s * n + i)), weight(i));
      }
    }
  }
  detectors::ProfileCounters& c = profile.counters();
  c.events = static_cast<uint64_t>(n);
  for (int64_t i = 0; i < n; ++i) {
    c.weight += weight(i);
    c.weight_sq += weight(i) * weight(i);
  }
  return profile;
}

}  // namespace driftwatch::service::reports
