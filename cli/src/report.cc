// `driftctl report`: one self-contained HTML page (inline CSS and SVG, no
// scripts, no external assets) so it can be mailed or attached to a ticket.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <ostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "driftwatch/cli/commands.h"
#include "internal/summary.h"

namespace driftwatch::cli {
namespace {

// More bars than this make a chart unreadable; the rest are merged.
constexpr size_t kMaxBars = 30;
constexpr size_t kMaxLabelChars = 18;

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Shortens a label for the axis without cutting a UTF-8 sequence in half.
std::string Truncate(const std::string& text) {
  if (text.size() <= kMaxLabelChars) return text;
  size_t cut = kMaxLabelChars - 1;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\u2026";
}

struct Bar {
  std::string label;
  double reference = 0;
  double current = 0;
};

std::string Edge(double x) { return absl::StrFormat("%.4g", x); }

std::string NumericLabel(const std::vector<double>& edges, size_t first, size_t last) {
  // Bins first..last (inclusive) span (edges[first-1], edges[last]].
  if (edges.empty()) return "all";
  const bool open_low = first == 0;
  const bool open_high = last == edges.size();
  if (open_low && open_high) return "all";
  if (open_low) return "\u2264 " + Edge(edges[last]);
  if (open_high) return "> " + Edge(edges[first - 1]);
  return absl::StrCat("(", Edge(edges[first - 1]), ", ", Edge(edges[last]), "]");
}

double At(const std::vector<double>& v, size_t i) { return i < v.size() ? v[i] : 0.0; }

std::vector<Bar> BarsFor(const FeatureReport& f) {
  const detectors::FeatureDrift& d = f.drift;
  std::vector<Bar> bars;
  if (f.kind == FeatureKind::kNumeric) {
    const size_t n = d.edges.size() + 1;
    const size_t group = (n + kMaxBars - 1) / kMaxBars;  // adjacent bins per bar
    for (size_t first = 0; first < n; first += group) {
      const size_t last = std::min(n, first + group) - 1;
      Bar bar{NumericLabel(d.edges, first, last)};
      for (size_t i = first; i <= last; ++i) {
        bar.reference += At(d.reference_proportions, i);
        bar.current += At(d.current_proportions, i);
      }
      bars.push_back(std::move(bar));
    }
    return bars;
  }
  for (size_t i = 0; i < d.categories.size(); ++i) {
    bars.push_back({d.categories[i], At(d.reference_proportions, i), At(d.current_proportions, i)});
  }
  std::stable_sort(bars.begin(), bars.end(), [](const Bar& a, const Bar& b) {
    return std::max(a.reference, a.current) > std::max(b.reference, b.current);
  });
  if (bars.size() > kMaxBars) {
    Bar rest{absl::StrCat("(", bars.size() - kMaxBars + 1, " others)")};
    for (size_t i = kMaxBars - 1; i < bars.size(); ++i) {
      rest.reference += bars[i].reference;
      rest.current += bars[i].current;
    }
    bars.resize(kMaxBars - 1);
    bars.push_back(std::move(rest));
  }
  return bars;
}

// Reference as a wide pale bar with current as a narrow dark bar on top, so
// both proportions of a bin read against one axis.
void WriteChart(const FeatureReport& f, std::ostream& html) {
  const std::vector<Bar> bars = BarsFor(f);
  double top = 0;
  for (const Bar& b : bars) top = std::max({top, b.reference, b.current});
  if (!(top > 0)) top = 1;
  const double slot = std::clamp(640.0 / static_cast<double>(bars.size()), 16.0, 48.0);
  const double left = 84, plot_top = 22, plot_h = 150, label_h = 90;
  const double width = left + slot * static_cast<double>(bars.size()) + 12;
  const double height = plot_top + plot_h + label_h;
  const double base = plot_top + plot_h;
  html << absl::StrFormat(
      "<svg width=\"%.0f\" height=\"%.0f\" "
      "role=\"img\" aria-label=\"reference vs current proportions\">\n",
      std::max(width, 260.0), height);
  html << absl::StrFormat(
      "<rect class=\"ref\" x=\"%.0f\" y=\"4\" width=\"10\" height=\"10\"/>"
      "<text x=\"%.0f\" y=\"13\">reference</text>"
      "<rect class=\"cur\" x=\"%.0f\" y=\"4\" width=\"10\" height=\"10\"/>"
      "<text x=\"%.0f\" y=\"13\">current</text>\n",
      left, left + 14, left + 84, left + 98);
  for (double frac : {0.0, 0.5, 1.0}) {
    const double y = base - frac * plot_h;
    html << absl::StrFormat(
        "<line class=\"grid\" x1=\"%.0f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
        "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g%%</text>\n",
        left, y, width - 8, y, left - 4, y + 3, 100 * frac * top);
  }
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double x = left + slot * static_cast<double>(i);
    const double ref_h = plot_h * b.reference / top;
    const double cur_h = plot_h * b.current / top;
    const std::string label = HtmlEscape(b.label);
    html << absl::StrFormat(
        "<g><title>%s: reference %.2f%%, current %.2f%%</title>"
        "<rect class=\"ref\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
        "<rect class=\"cur\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></g>\n",
        label, 100 * b.reference, 100 * b.current, x + slot * 0.1, base - ref_h, slot * 0.8, ref_h,
        x + slot * 0.3, base - cur_h, slot * 0.4, cur_h);
    const double cx = x + slot / 2;
    html << absl::StrFormat(
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
        "transform=\"rotate(-45 %.1f %.1f)\">%s</text>\n",
        cx, base + 12, cx, base + 12, HtmlEscape(Truncate(b.label)));
  }
  html << "</svg>\n";
}

constexpr std::string_view kStyle = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}h3{font-size:1em;margin:1.5em 0 .3em}
table{border-collapse:collapse;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}
th{background:#f4f4f4}
tr.drift td{background:#fde2e1}
.muted{color:#666;font-size:13px}
svg text{font-size:10px;fill:#444}
.ref{fill:#4e79a7;fill-opacity:.45}
.cur{fill:#e15759}
.grid{stroke:#ddd;stroke-width:1}
)css";

void WriteHtml(const DatasetComparison& c, std::ostream& html) {
  const std::vector<const FeatureReport*> sorted = internal::SortedByPsi(c);
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<title>driftctl report: " << HtmlEscape(c.current_name) << " vs "
       << HtmlEscape(c.reference_name) << "</title>\n<style>" << kStyle << "</style>\n</head>\n"
       << "<body>\n<h1>Drift report</h1>\n"
       << "<p>Reference: <b>" << HtmlEscape(c.reference_name) << "</b> (" << c.reference_rows
       << " rows) &middot; Current: <b>" << HtmlEscape(c.current_name) << "</b> (" << c.current_rows
       << " rows) &middot; <b>" << c.drifted_count() << "</b> of " << c.features.size()
       << " features drifted</p>\n";

  html << "<table>\n<tr>";
  for (const std::string& title : internal::SummaryHeader()) html << "<th>" << title << "</th>";
  html << "</tr>\n";
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::vector<std::string> cells = internal::SummaryCells(*sorted[i]);
    html << (sorted[i]->drifted ? "<tr class=\"drift\">" : "<tr>");
    for (size_t col = 0; col < cells.size(); ++col) {
      if (col == 0) {
        html << "<td><a href=\"#f" << i << "\">" << HtmlEscape(cells[col]) << "</a>"
             << (sorted[i]->drifted ? " *" : "") << "</td>";
      } else {
        html << "<td>" << HtmlEscape(cells[col]) << "</td>";
      }
    }
    html << "</tr>\n";
  }
  html << "</table>\n<p class=\"muted\">* " << HtmlEscape(internal::kDriftRule)
       << ". Numeric bins are equal-frequency bins of the reference; empty bins count as "
          "1e-4 in PSI/KL/JS.</p>\n";

  html << "<h2>Features</h2>\n";
  for (size_t i = 0; i < sorted.size(); ++i) {
    const FeatureReport& f = *sorted[i];
    html << "<section id=\"f" << i << "\">\n<h3>" << HtmlEscape(f.name) << "</h3>\n"
         << "<p class=\"muted\">" << internal::KindName(f.kind)
         << absl::StrFormat(" &middot; PSI %.4f &middot; JS %.4f", f.drift.divergences.psi,
                            f.drift.divergences.js)
         << absl::StrFormat(" &middot; null rate %.2f%% &rarr; %.2f%%", 100 * f.null_rate_reference,
                            100 * f.null_rate_current)
         << (f.drifted ? " &middot; <b>drifted</b>" : "") << "</p>\n";
    WriteChart(f, html);
    html << "</section>\n";
  }
  html << "</body>\n</html>\n";
}

}  // namespace

int RunReport(const ReportOptions& options, std::ostream& out, std::ostream& err) {
  if (options.out_path.empty()) {
    return internal::ReportError(err, absl::InvalidArgumentError("--out is required"));
  }
  absl::StatusOr<DatasetComparison> comparison =
      CompareFiles(options.reference, options.current, options.compare);
  if (!comparison.ok()) return internal::ReportError(err, comparison.status());
  std::ostringstream html;
  WriteHtml(*comparison, html);
  std::ofstream file(options.out_path, std::ios::binary | std::ios::trunc);
  file << html.str();
  file.close();
  if (!file) {
    return internal::ReportError(
        err, absl::InvalidArgumentError(absl::StrCat(options.out_path, ": cannot write")));
  }
  out << "wrote " << options.out_path << ": " << comparison->drifted_count() << " of "
      << comparison->features.size() << " features drifted\n";
  if (options.fail_on_drift && comparison->drifted_count() > 0) return kExitDrift;
  return kExitOk;
}

}  // namespace driftwatch::cli
