#include "sidecar/config/document_reader.h"

#include <exception>
#include <sstream>
#include <utility>
#include <vector>

#include "sidecar/config/hooks_section.h"
#include "yaml-cpp/eventhandler.h"

namespace credsync::config::loading {
namespace {

constexpr const char* kSections[] = {"identity", "kms",     "tls",       "http", "output",
                                     "refresh",  "control", "local_api", "log"};
constexpr const char* kProfileKeys[] = {"name",    "secret_name", "version_stage",
                                        "default", "required",    "kind",
                                        "format",  "file",        "file_prefix"};

bool isSection(absl::string_view name) {
  for (const char* section : kSections) {
    if (name == section) return true;
  }
  return false;
}

bool isProfileKey(absl::string_view name) {
  for (const char* key : kProfileKeys) {
    if (name == key) return true;
  }
  return false;
}

// Counts documents without building them. yaml-cpp 0.7 can return a
// document without consuming any input (jbeder/yaml-cpp#1040: a stray ','
// at the top level), so LoadAll loops forever allocating null documents; a
// second document starting where the first did is that case.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> starts;
};

absl::Status syntaxError(const YAML::Mark& mark, absl::string_view problem) {
  // yaml-cpp's messages are fixed phrases; a few append the offending
  // escape character, which printable() keeps on one line.
  return invalid("config", absl::StrCat("YAML syntax error at line ", mark.line + 1, ", column ",
                                        mark.column + 1, ": ", printable(problem)));
}

bool isInstanceKey(absl::string_view name) {
  for (const InstanceKey& key : kInstanceKeys) {
    if (name == key.key) return true;
  }
  return false;
}

absl::Status readMappingList(const std::string& key, const YAML::Node& node,
                             bool (*is_known)(absl::string_view), std::vector<RawEntry>& out) {
  if (!node.IsSequence()) {
    return invalid(key, absl::StrCat("must be a list (line ", node.Mark().line + 1, ")"));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string path = absl::StrCat(key, "[", i, "]");
    RawEntry entry;
    entry.line = item.Mark().line + 1;
    if (!item.IsMap()) {
      return invalid(path, absl::StrCat("must be a mapping (line ", entry.line, ")"));
    }
    absl::Status status =
        forEachEntry(path, item,
                     [&](const std::string& name, const std::string& full, int line,
                         const YAML::Node& value) -> absl::Status {
                       if (!is_known(name)) {
                         return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
                       }
                       if (value.IsNull()) return absl::OkStatus();
                       RawValue raw;
                       raw.source = Source::kFile;
                       raw.line = value.Mark().line + 1;
                       if (absl::Status scalar = readScalar(full, value, raw); !scalar.ok()) {
                         return scalar;
                       }
                       entry.fields[name] = std::move(raw);
                       return absl::OkStatus();
                     });
    if (!status.ok()) return status;
    out.push_back(std::move(entry));
  }
  return absl::OkStatus();
}

absl::Status readProfiles(RawConfig& raw_config, const YAML::Node& node) {
  if (node.IsNull()) return absl::OkStatus();
  raw_config.profiles_in_file = true;
  return readMappingList("profiles", node, isProfileKey, raw_config.profiles);
}

absl::Status readInstances(RawConfig& raw_config, const YAML::Node& node) {
  // A YAML null leaves the key unset, so the environment still applies.
  if (node.IsNull()) return absl::OkStatus();
  raw_config.instances_in_file = true;
  return readMappingList("kms.instances", node, isInstanceKey, raw_config.instances);
}

absl::Status readSection(RawConfig& raw_config, const std::string& section,
                         const YAML::Node& node) {
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return invalid(section, absl::StrCat("must be a mapping (line ", node.Mark().line + 1, ")"));
  }
  return forEachEntry(section, node,
                      [&](const std::string& name, const std::string& full, int line,
                          const YAML::Node& value) -> absl::Status {
                        if (full == "kms.instances") return readInstances(raw_config, value);
                        const KeySpec* spec = findKey(full);
                        if (spec == nullptr)
                          return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
                        RawValue raw;
                        raw.line = value.IsNull() ? line : value.Mark().line + 1;
                        if (value.IsNull()) return absl::OkStatus();  // null leaves the key unset
                        raw.source = Source::kFile;
                        if (!spec->is_list) {
                          if (absl::Status status = readScalar(full, value, raw); !status.ok())
                            return status;
                          raw_config.values[full] = std::move(raw);
                          return absl::OkStatus();
                        }
                        if (!value.IsSequence()) {
                          return invalid(full,
                                         absl::StrCat("must be a list (line ", raw.line, ")"));
                        }
                        for (size_t i = 0; i < value.size(); ++i) {
                          const YAML::Node item = value[i];
                          const int item_line = item.Mark().line + 1;
                          if (!item.IsScalar()) {
                            return invalid(absl::StrCat(full, "[", i, "]"),
                                           absl::StrCat("must be a string (line ", item_line, ")"));
                          }
                          raw.items.push_back(item.Scalar());
                          raw.item_lines.push_back(item_line);
                        }
                        raw_config.values[full] = std::move(raw);
                        return absl::OkStatus();
                      });
}

absl::Status readRoot(RawConfig& raw_config, const YAML::Node& root) {
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return invalid("config", "the document must be a mapping of sections (identity, kms, ...)");
  }
  return forEachEntry("", root,
                      [&](const std::string& name, const std::string& full, int line,
                          const YAML::Node& value) -> absl::Status {
                        if (name == "profiles") return readProfiles(raw_config, value);
                        if (name == "hooks") {
                          raw_config.hooks_in_file = !value.IsNull();
                          return readHooks(value, raw_config.hooks);
                        }
                        if (isSection(name)) return readSection(raw_config, name, value);
                        return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
                      });
}

}  // namespace

absl::Status readDocument(absl::string_view text, RawConfig& raw_config) {
  const std::string input(text);
  YAML::Node root;
  try {
    std::istringstream stream(input);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    // Two are enough to tell "one document" from "more than one".
    while (counter.starts.size() < 2 && parser.HandleNextDocument(counter)) {
    }
    if (counter.starts.size() > 1) {
      if (counter.starts[1].pos == counter.starts[0].pos) {
        return syntaxError(counter.starts[1], "unexpected character");
      }
      return invalid("config", "must hold exactly one YAML document");
    }
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    return syntaxError(e.mark, e.msg);
  } catch (const std::exception&) {
    return invalid("config", "could not be parsed");
  }
  try {
    return readRoot(raw_config, root);
  } catch (const YAML::Exception& e) {
    return invalid("config", absl::StrCat("could not be read at line ", e.mark.line + 1));
  } catch (const std::exception&) {
    return invalid("config", "could not be read");
  }
}

absl::Status readScalar(const std::string& key, const YAML::Node& node, RawValue& out) {
  if (!node.IsScalar()) {
    return invalid(key, absl::StrCat("must be a single value, not a list or mapping (line ",
                                     node.Mark().line + 1, ")"));
  }
  out.text = node.Scalar();
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
