#include "sidecar/metrics/registry.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace credsync::metrics {
namespace {

// Label values: backslash, double quote and line feed are escaped.
void appendLabelValue(absl::string_view value, std::string& out) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text: backslash and line feed are escaped, quotes are not.
void appendHelp(absl::string_view help, std::string& out) {
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::vector<std::string> toKey(LabelValues values) {
  return std::vector<std::string>(values.begin(), values.end());
}

std::vector<double> cleanBounds(std::vector<double> bounds) {
  assert(std::is_sorted(bounds.begin(), bounds.end()) &&
         std::adjacent_find(bounds.begin(), bounds.end()) == bounds.end() &&
         std::all_of(bounds.begin(), bounds.end(), [](double b) { return std::isfinite(b); }));
  bounds.erase(std::remove_if(bounds.begin(), bounds.end(),
                              [](double bound) { return !std::isfinite(bound); }),
               bounds.end());
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  return bounds;
}

}  // namespace

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Shortest round-trip form; absl::StrCat's %g would print a Unix
  // timestamp as 1.76723e+09 and lose seconds.
  std::array<char, 32> buffer;
  const auto [end, error] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (error != std::errc()) return "NaN";  // cannot happen: 32 bytes fit any double
  return std::string(buffer.data(), end);
}

Family::Family(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

bool Family::labelsMatch(LabelValues values) const {
  assert(values.size() == label_names_.size());
  return values.size() == label_names_.size();
}

void Family::renderHeader(absl::string_view type, std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ");
  appendHelp(help_, out);
  absl::StrAppend(&out, "\n# TYPE ", name_, " ", type, "\n");
}

void Family::renderSample(absl::string_view name, const std::vector<std::string>& values,
                          absl::string_view extra_label, absl::string_view extra_value,
                          absl::string_view value, std::string& out) const {
  out.append(name.data(), name.size());
  if (!values.empty() || !extra_label.empty()) {
    out += '{';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      absl::StrAppend(&out, label_names_[i], "=\"");
      appendLabelValue(values[i], out);
      out += '"';
    }
    if (!extra_label.empty()) {
      if (!values.empty()) out += ',';
      absl::StrAppend(&out, extra_label, "=\"");
      appendLabelValue(extra_value, out);
      out += '"';
    }
    out += '}';
  }
  absl::StrAppend(&out, " ", value, "\n");
}

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), std::move(label_names)) {}

void Counter::increment(LabelValues values, double amount) {
  if (!labelsMatch(values) || !(amount >= 0)) return;
  MutexLock lock(&mutex_);
  series_[toKey(values)] += amount;
}

void Counter::initialize(LabelValues values) {
  if (!labelsMatch(values)) return;
  MutexLock lock(&mutex_);
  series_.try_emplace(toKey(values), 0.0);
}

double Counter::valueForTest(LabelValues values) const {
  MutexLock lock(&mutex_);
  const auto it = series_.find(toKey(values));
  return it == series_.end() ? 0 : it->second;
}

void Counter::render(std::string& out) const {
  renderHeader("counter", out);
  MutexLock lock(&mutex_);
  for (const auto& [values, value] : series_) {
    renderSample(name_, values, "", "", formatValue(value), out);
  }
}

Gauge::Gauge(std::string name, std::string help, std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), std::move(label_names)) {}

void Gauge::set(LabelValues values, double value) {
  if (!labelsMatch(values)) return;
  MutexLock lock(&mutex_);
  series_[toKey(values)] = value;
}

void Gauge::render(std::string& out) const {
  renderHeader("gauge", out);
  MutexLock lock(&mutex_);
  for (const auto& [values, value] : series_) {
    renderSample(name_, values, "", "", formatValue(value), out);
  }
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> upper_bounds)
    : Family(std::move(name), std::move(help), std::move(label_names)),
      upper_bounds_(cleanBounds(std::move(upper_bounds))) {
  assert(std::find(label_names_.begin(), label_names_.end(), "le") == label_names_.end());
}

void Histogram::observe(LabelValues values, double value) {
  if (!labelsMatch(values) || std::isnan(value)) return;
  // Buckets are "less than or equal": the first bound not below the value.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  MutexLock lock(&mutex_);
  Series& series = series_[toKey(values)];
  if (series.bucket_counts.empty()) series.bucket_counts.resize(upper_bounds_.size() + 1);
  ++series.bucket_counts[bucket];
  series.sum += value;
  ++series.count;
}

void Histogram::render(std::string& out) const {
  renderHeader("histogram", out);
  const std::string bucket_name = absl::StrCat(name_, "_bucket");
  const std::string sum_name = absl::StrCat(name_, "_sum");
  const std::string count_name = absl::StrCat(name_, "_count");
  MutexLock lock(&mutex_);
  for (const auto& [values, series] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < series.bucket_counts.size(); ++i) {
      cumulative += series.bucket_counts[i];
      const std::string le = i < upper_bounds_.size() ? formatValue(upper_bounds_[i]) : "+Inf";
      renderSample(bucket_name, values, "le", le, absl::StrCat(cumulative), out);
    }
    renderSample(sum_name, values, "", "", formatValue(series.sum), out);
    renderSample(count_name, values, "", "", absl::StrCat(series.count), out);
  }
}

template <typename T>
T& Registry::add(std::unique_ptr<T> family) {
  T& result = *family;
  MutexLock lock(&mutex_);
  assert(std::none_of(families_.begin(), families_.end(),
                      [&](const auto& existing) { return existing->name() == result.name(); }));
  families_.push_back(std::move(family));
  return result;
}

Counter& Registry::addCounter(std::string name, std::string help,
                              std::vector<std::string> label_names) {
  return add(std::make_unique<Counter>(std::move(name), std::move(help), std::move(label_names)));
}

Gauge& Registry::addGauge(std::string name, std::string help,
                          std::vector<std::string> label_names) {
  return add(std::make_unique<Gauge>(std::move(name), std::move(help), std::move(label_names)));
}

Histogram& Registry::addHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> upper_bounds) {
  return add(std::make_unique<Histogram>(std::move(name), std::move(help), std::move(label_names),
                                         std::move(upper_bounds)));
}

std::string Registry::render() const {
  std::string out;
  renderTo(out);
  return out;
}

void Registry::renderTo(std::string& out) const {
  MutexLock lock(&mutex_);
  for (const auto& family : families_) family->render(out);
}

void setCount(Counter& counter, LabelValues labels, uint64_t value) {
  counter.initialize(labels);
  if (value > 0) counter.increment(labels, static_cast<double>(value));
}

}  // namespace credsync::metrics
