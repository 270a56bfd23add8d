#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sidecar/common/mutex.h"

// A minimal Prometheus client: counter, gauge and histogram families with
// labels, rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Only what
// the sidecar needs: no summaries, no exemplars, no OpenMetrics.
namespace credsync::metrics {

// Label values of one series, in the order of its family's label names.
using LabelValues = absl::Span<const absl::string_view>;

// What every family shares: a name, a help text and label names, all fixed
// when the family is registered. Series are created on first use and are
// never removed, so label values must come from bounded sets. Passing a
// different number of label values than the family has names is a bug: it
// asserts in debug builds and the sample is dropped otherwise. Thread-safe.
class Family {
 public:
  virtual ~Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  // Appends the HELP and TYPE lines and every series, sorted by label values.
  virtual void render(std::string& out) const = 0;

 protected:
  Family(std::string name, std::string help, std::vector<std::string> label_names);

  bool labelsMatch(LabelValues values) const;
  // "# HELP ...\n# TYPE ...\n".
  void renderHeader(absl::string_view type, std::string& out) const;
  // `name{a="x",b="y"} value\n`, with `extra_label` (for a histogram's "le")
  // after the family's own labels when not empty.
  void renderSample(absl::string_view name, const std::vector<std::string>& values,
                    absl::string_view extra_label, absl::string_view extra_value,
                    absl::string_view value, std::string& out) const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
};

// A value that only goes up (resets only when the process restarts).
class Counter : public Family {
 public:
  Counter(std::string name, std::string help, std::vector<std::string> label_names);

  // Adds `amount`; a negative or NaN amount is ignored, since a counter that
  // went down would read as a restart to rate().
  void increment(LabelValues values, double amount = 1);
  // Creates the series at zero if it does not exist yet, so that the first
  // real increment shows up in rate() and increase() instead of being the
  // series' first sample.
  void initialize(LabelValues values);
  // The current value (zero for a series that does not exist); for tests,
  // since production only renders it.
  double valueForTest(LabelValues values) const;
  void render(std::string& out) const override;

 private:
  mutable Mutex mutex_;
  std::map<std::vector<std::string>, double> series_ ABSL_GUARDED_BY(mutex_);
};

// A value that is set, up or down.
class Gauge : public Family {
 public:
  Gauge(std::string name, std::string help, std::vector<std::string> label_names);

  void set(LabelValues values, double value);
  void render(std::string& out) const override;

 private:
  mutable Mutex mutex_;
  std::map<std::vector<std::string>, double> series_ ABSL_GUARDED_BY(mutex_);
};

// Observations counted into fixed buckets, rendered as cumulative
// `_bucket{le="..."}` series ending in le="+Inf", plus `_sum` and `_count`.
class Histogram : public Family {
 public:
  // `upper_bounds`: finite and strictly increasing; the +Inf bucket is
  // implicit. Anything else asserts in debug builds and is cleaned up
  // (sorted, deduplicated, non-finite bounds dropped) otherwise.
  Histogram(std::string name, std::string help, std::vector<std::string> label_names,
            std::vector<double> upper_bounds);

  // A NaN observation is ignored: it would poison _sum for good.
  void observe(LabelValues values, double value);
  void render(std::string& out) const override;

 private:
  struct Series {
    // Per bucket, not cumulative; the last one is +Inf.
    std::vector<uint64_t> bucket_counts;
    double sum = 0;
    uint64_t count = 0;
  };

  const std::vector<double> upper_bounds_;
  mutable Mutex mutex_;
  std::map<std::vector<std::string>, Series> series_ ABSL_GUARDED_BY(mutex_);
};

// Owns families and renders them in registration order. Registering two
// families with one name is a bug (asserts in debug builds). The references
// returned stay valid as long as the registry. Thread-safe.
class Registry {
 public:
  Counter& addCounter(std::string name, std::string help,
                      std::vector<std::string> label_names = {});
  Gauge& addGauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Histogram& addHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                          std::vector<double> upper_bounds);

  // The whole exposition of this registry's families.
  std::string render() const;
  void renderTo(std::string& out) const;

 private:
  template <typename T>
  T& add(std::unique_ptr<T> family);

  mutable Mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_ ABSL_GUARDED_BY(mutex_);
};

// Sets a counter of a registry rebuilt at every scrape to a count kept
// elsewhere: the series exists from the first scrape, at 0 until something
// happened.
void setCount(Counter& counter, LabelValues labels, uint64_t value);

// The exposition format's number syntax: the shortest text that reads back
// as the same double ("3", "0.25", "1767225600", "1e-09"), and "+Inf",
// "-Inf" and "NaN".
std::string formatValue(double value);

}  // namespace credsync::metrics
