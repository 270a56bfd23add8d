#include "sidecar/metrics/registry.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/metrics/exposition_validator.h"

namespace credsync::metrics {
namespace {

using ::testing::HasSubstr;
using testing::validateExposition;

// Verifies a labelled counter's exact text: HELP, TYPE, then one line per
// series sorted by label values.
TEST(RegistryTest, CounterWithLabels) {
  Registry registry;
  Counter& counter = registry.addCounter("demo_requests_total", "Requests.", {"action", "outcome"});
  counter.increment({"Put", "ok"});
  counter.increment({"Get", "ok"}, 2);
  counter.increment({"Get", "throttled"});
  EXPECT_EQ(registry.render(),
            "# HELP demo_requests_total Requests.\n"
            "# TYPE demo_requests_total counter\n"
            "demo_requests_total{action=\"Get\",outcome=\"ok\"} 2\n"
            "demo_requests_total{action=\"Get\",outcome=\"throttled\"} 1\n"
            "demo_requests_total{action=\"Put\",outcome=\"ok\"} 1\n");
  EXPECT_EQ(counter.valueForTest({"Get", "ok"}), 2);
  EXPECT_EQ(counter.valueForTest({"Get", "missing"}), 0);
}

// Verifies a family without samples still announces itself, and that an
// unlabelled series has no braces.
TEST(RegistryTest, EmptyFamilyAndUnlabelledSeries) {
  Registry registry;
  registry.addCounter("demo_errors_total", "Errors.", {"kind"});
  registry.addGauge("demo_up", "Up.").set({}, 1);
  EXPECT_EQ(registry.render(),
            "# HELP demo_errors_total Errors.\n"
            "# TYPE demo_errors_total counter\n"
            "# HELP demo_up Up.\n"
            "# TYPE demo_up gauge\n"
            "demo_up 1\n");
}

// Verifies counters only go up: negative and NaN amounts are ignored, and
// initialize() creates a zero series without resetting an existing one.
TEST(RegistryTest, CounterIgnoresDecreasesAndInitializesAtZero) {
  Registry registry;
  Counter& counter = registry.addCounter("demo_total", "Demo.", {"profile"});
  counter.initialize({"a"});
  counter.increment({"b"}, 3);
  counter.increment({"b"}, -1);
  counter.increment({"b"}, std::nan(""));
  counter.initialize({"b"});
  EXPECT_THAT(registry.render(), HasSubstr("demo_total{profile=\"a\"} 0\n"
                                           "demo_total{profile=\"b\"} 3\n"));
}

// Verifies label values escape backslash, double quote and newline (and
// nothing else), and HELP text escapes backslash and newline.
TEST(RegistryTest, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry.addGauge("demo_info", "Path C:\\dir\nsecond \"line\".", {"value"})
      .set({"a\\b\"c\nd'e\tf"}, 1);
  const std::string text = registry.render();
  EXPECT_EQ(text,
            "# HELP demo_info Path C:\\\\dir\\nsecond \"line\".\n"
            "# TYPE demo_info gauge\n"
            "demo_info{value=\"a\\\\b\\\"c\\nd'e\tf\"} 1\n");
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies histogram buckets are cumulative, "le" is inclusive and comes
// after the family's labels, and +Inf equals _count.
TEST(RegistryTest, HistogramBucketsAreCumulative) {
  Registry registry;
  Histogram& histogram =
      registry.addHistogram("demo_seconds", "Latency.", {"action"}, {0.25, 1, 2.5});
  for (double value : {0.125, 0.25, 0.5, 2.0, 100.0}) histogram.observe({"Get"}, value);
  histogram.observe({"Get"}, std::nan(""));
  const std::string text = registry.render();
  EXPECT_EQ(text,
            "# HELP demo_seconds Latency.\n"
            "# TYPE demo_seconds histogram\n"
            "demo_seconds_bucket{action=\"Get\",le=\"0.25\"} 2\n"
            "demo_seconds_bucket{action=\"Get\",le=\"1\"} 3\n"
            "demo_seconds_bucket{action=\"Get\",le=\"2.5\"} 4\n"
            "demo_seconds_bucket{action=\"Get\",le=\"+Inf\"} 5\n"
            "demo_seconds_sum{action=\"Get\"} 102.875\n"
            "demo_seconds_count{action=\"Get\"} 5\n");
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies an unlabelled histogram puts "le" alone in braces.
TEST(RegistryTest, UnlabelledHistogram) {
  Registry registry;
  registry.addHistogram("demo_seconds", "Latency.", {}, {1}).observe({}, 0.5);
  EXPECT_EQ(registry.render(),
            "# HELP demo_seconds Latency.\n"
            "# TYPE demo_seconds histogram\n"
            "demo_seconds_bucket{le=\"1\"} 1\n"
            "demo_seconds_bucket{le=\"+Inf\"} 1\n"
            "demo_seconds_sum 0.5\n"
            "demo_seconds_count 1\n");
}

// Verifies numbers print in the shortest exact form: integers without a
// fraction, Unix timestamps without an exponent, and the special values as
// Prometheus spells them.
TEST(RegistryTest, FormatsValues) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(3), "3");
  EXPECT_EQ(formatValue(0.005), "0.005");
  EXPECT_EQ(formatValue(-2.5), "-2.5");
  EXPECT_EQ(formatValue(1767225600), "1767225600");
  EXPECT_EQ(formatValue(1767225600.25), "1767225600.25");
  EXPECT_EQ(formatValue(1e-9), "1e-09");
  EXPECT_EQ(formatValue(1.5e300), "1.5e+300");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatValue(std::nan("")), "NaN");
}

// Verifies families render in registration order.
TEST(RegistryTest, RendersInRegistrationOrder) {
  Registry registry;
  registry.addGauge("demo_b", "B.").set({}, 1);
  registry.addGauge("demo_a", "A.").set({}, 2);
  const std::string text = registry.render();
  EXPECT_LT(text.find("demo_b"), text.find("demo_a"));
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies concurrent recording loses no increments or observations.
TEST(RegistryTest, ConcurrentRecording) {
  Registry registry;
  Counter& counter = registry.addCounter("demo_total", "Demo.", {"thread"});
  Histogram& histogram = registry.addHistogram("demo_seconds", "Demo.", {}, {1});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const std::string name = i % 2 == 0 ? "even" : "odd";
      for (int j = 0; j < 1000; ++j) {
        counter.increment({name});
        histogram.observe({}, 0.5);
        if (j % 100 == 0) registry.render();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter.valueForTest({"even"}), 4000);
  EXPECT_EQ(counter.valueForTest({"odd"}), 4000);
  EXPECT_THAT(registry.render(), HasSubstr("demo_seconds_count 8000\n"));
}

// Verifies the validator used by these tests rejects what it should, so a
// passing validation means something.
TEST(ExpositionValidatorTest, RejectsMalformedExpositions) {
  const std::string header = "# HELP m M.\n# TYPE m gauge\n";
  EXPECT_EQ(validateExposition(header + "m 1\n"), "");
  EXPECT_EQ(validateExposition(header + "m{a=\"x\"} 1\nm{a=\"y\"} -Inf\n"), "");
  EXPECT_NE(validateExposition("m 1\n"), "");                               // no HELP/TYPE
  EXPECT_NE(validateExposition("# TYPE m gauge\nm 1\n"), "");               // no HELP
  EXPECT_NE(validateExposition("# TYPE m gauge\n# HELP m M.\nm 1\n"), "");  // HELP after TYPE
  EXPECT_NE(validateExposition(header + "m 1"), "");                        // no final newline
  EXPECT_NE(validateExposition(header + "m  1\n"), "");
  EXPECT_NE(validateExposition(header + "m 1 1767225600000\n"), "");  // timestamp
  EXPECT_NE(validateExposition(header + "m one\n"), "");
  EXPECT_NE(validateExposition(header + "m{a=\"x\\t\"} 1\n"), "");  // bad escape
  EXPECT_NE(validateExposition(header + "m{a=\"x} 1\n"), "");
  EXPECT_NE(validateExposition(header + "m{a=\"x\",a=\"y\"} 1\n"), "");
  EXPECT_NE(validateExposition(header + "m 1\nm 2\n"), "");  // duplicate series
  EXPECT_NE(validateExposition(header + "# HELP n N.\n# TYPE n gauge\nn 1\nm 2\n"), "");
  const std::string histogram = "# HELP h H.\n# TYPE h histogram\n";
  EXPECT_EQ(validateExposition(
                histogram + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"),
            "");
  EXPECT_NE(validateExposition(
                histogram + "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"),
            "");  // not cumulative
  EXPECT_NE(validateExposition(histogram + "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n"),
            "");  // no +Inf
  EXPECT_NE(validateExposition(histogram + "h 1\n"), "");
}

}  // namespace
}  // namespace credsync::metrics
