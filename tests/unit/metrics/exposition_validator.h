#pragma once

#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace credsync::metrics::testing {

// A strict reader of the Prometheus text format 0.0.4 as credsync writes it,
// so tests can check a whole exposition rather than a few lines: every line
// is "# HELP name text", "# TYPE name type" or `name{label="value",...} value`
// (no timestamps); every family has HELP and then TYPE before its samples,
// its samples are contiguous, and no series appears twice; label values use
// only the three escapes; histogram buckets carry "le", are cumulative and
// end with le="+Inf" equal to _count. Returns the first problem, or "" for a
// valid exposition.
inline std::string validateExposition(absl::string_view text) {
  auto isNameStart = [](char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; };
  auto isNameChar = [&](char c) { return isNameStart(c) || absl::ascii_isdigit(c); };
  auto readName = [&](absl::string_view& rest, bool metric) -> std::optional<std::string> {
    size_t length = 0;
    while (length < rest.size() &&
           (length == 0 ? isNameStart(rest[length]) : isNameChar(rest[length])) &&
           (metric || rest[length] != ':')) {
      ++length;
    }
    if (length == 0) return std::nullopt;
    std::string name(rest.substr(0, length));
    rest.remove_prefix(length);
    return name;
  };
  auto readValue = [](absl::string_view text, double& value) {
    if (text == "+Inf") return value = INFINITY, true;
    if (text == "-Inf") return value = -INFINITY, true;
    if (text == "NaN") return value = NAN, true;
    return absl::SimpleAtod(text, &value) && !text.empty() && text[0] != '+' &&
           !absl::StrContains(text, ' ');
  };

  struct Family {
    bool help = false;
    std::string type;
    bool sampled = false;
  };
  struct HistogramSeries {
    std::vector<std::pair<double, double>> buckets;  // le, value
    std::optional<double> count;
  };
  std::map<std::string, Family> families;
  std::set<std::string> series_seen;
  std::map<std::string, HistogramSeries> histograms;  // by family + labels without le
  std::string current;

  if (text.empty()) return "";
  if (!absl::EndsWith(text, "\n")) return "exposition does not end with a newline";
  text.remove_suffix(1);
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    const std::string where = absl::StrCat("line ", number, " (", line, "): ");
    if (absl::ConsumePrefix(&line, "# ")) {
      const bool help = absl::ConsumePrefix(&line, "HELP ");
      if (!help && !absl::ConsumePrefix(&line, "TYPE ")) return where + "unknown comment";
      std::optional<std::string> name = readName(line, true);
      if (!name || !absl::ConsumePrefix(&line, " ")) return where + "bad metric name";
      Family& family = families[*name];
      if (family.sampled) return where + "HELP/TYPE after samples";
      if (help) {
        if (family.help) return where + "second HELP";
        if (!family.type.empty()) return where + "HELP after TYPE";
        for (size_t i = 0; i < line.size(); ++i) {
          if (line[i] == '\\' &&
              (i + 1 == line.size() || (line[i + 1] != '\\' && line[i + 1] != 'n'))) {
            return where + "bad escape in HELP";
          }
          if (line[i] == '\\') ++i;
        }
        family.help = true;
      } else {
        if (!family.type.empty()) return where + "second TYPE";
        if (line != "counter" && line != "gauge" && line != "histogram" && line != "summary" &&
            line != "untyped") {
          return where + "unknown type";
        }
        family.type = std::string(line);
      }
      current = *name;
      continue;
    }

    std::optional<std::string> name = readName(line, true);
    if (!name) return where + "bad metric name";
    std::string family_name = *name;
    std::string suffix;
    for (const char* candidate : {"_bucket", "_sum", "_count"}) {
      if (absl::EndsWith(*name, candidate)) {
        const std::string base = name->substr(0, name->size() - std::strlen(candidate));
        auto it = families.find(base);
        if (it != families.end() && it->second.type == "histogram") {
          family_name = base;
          suffix = candidate;
        }
      }
    }
    auto family = families.find(family_name);
    if (family == families.end() || !family->second.help || family->second.type.empty()) {
      return where + "sample before its family's HELP and TYPE";
    }
    if (family_name != current) return where + "samples of a family are not contiguous";
    if (family->second.type == "histogram" && suffix.empty()) {
      return where + "histogram sample without _bucket/_sum/_count";
    }
    family->second.sampled = true;

    std::vector<std::pair<std::string, std::string>> labels;
    if (absl::ConsumePrefix(&line, "{")) {
      while (!absl::ConsumePrefix(&line, "}")) {
        if (!labels.empty() && !absl::ConsumePrefix(&line, ",")) return where + "expected ,";
        std::optional<std::string> label = readName(line, false);
        if (!label || !absl::ConsumePrefix(&line, "=\"")) return where + "bad label";
        std::string value;
        for (;;) {
          if (line.empty()) return where + "unterminated label value";
          const char c = line[0];
          line.remove_prefix(1);
          if (c == '"') break;
          if (c == '\n') return where + "raw newline in label value";
          if (c == '\\') {
            if (line.empty()) return where + "dangling backslash";
            const char escaped = line[0];
            line.remove_prefix(1);
            if (escaped == 'n') {
              value += '\n';
            } else if (escaped == '\\' || escaped == '"') {
              value += escaped;
            } else {
              return where + "bad escape in label value";
            }
          } else {
            value += c;
          }
        }
        for (const auto& [existing, unused] : labels) {
          if (existing == *label) return where + "duplicate label";
        }
        labels.emplace_back(*label, value);
      }
    }
    if (!absl::ConsumePrefix(&line, " ")) return where + "expected one space before the value";
    double value = 0;
    if (!readValue(line, value)) return where + "bad value (or a timestamp)";

    std::string key = *name;
    std::string key_without_le = family_name;
    std::optional<double> le;
    for (const auto& [label, label_value] : labels) {
      absl::StrAppend(&key, "|", label, "=", label_value);
      if (label == "le") {
        double bound = 0;
        if (!readValue(label_value, bound)) return where + "bad le";
        le = bound;
      } else {
        absl::StrAppend(&key_without_le, "|", label, "=", label_value);
      }
    }
    if (!series_seen.insert(key).second) return where + "duplicate series";
    if (suffix == "_bucket") {
      if (!le) return where + "bucket without le";
      histograms[key_without_le].buckets.emplace_back(*le, value);
    } else if (suffix == "_count") {
      histograms[key_without_le].count = value;
    }
  }

  for (const auto& [name, family] : families) {
    if (!family.help || family.type.empty()) return absl::StrCat(name, ": HELP or TYPE missing");
  }
  for (const auto& [key, histogram] : histograms) {
    if (histogram.buckets.empty() || !histogram.count) return key + ": buckets or _count missing";
    for (size_t i = 1; i < histogram.buckets.size(); ++i) {
      if (!(histogram.buckets[i - 1].first < histogram.buckets[i].first)) {
        return key + ": le not increasing";
      }
      if (histogram.buckets[i - 1].second > histogram.buckets[i].second) {
        return key + ": buckets not cumulative";
      }
    }
    if (!std::isinf(histogram.buckets.back().first)) return key + ": no +Inf bucket";
    if (histogram.buckets.back().second != *histogram.count) return key + ": +Inf != _count";
  }
  return "";
}

}  // namespace credsync::metrics::testing
