#include "sidecar/common/json_depth.h"

#include <limits>

namespace credsync {

bool jsonDepthWithin(absl::string_view text, int max_depth) {
  return jsonShapeWithin(text, max_depth, std::numeric_limits<size_t>::max());
}

bool jsonShapeWithin(absl::string_view text, int max_depth, size_t max_nodes) {
  int depth = 0;
  size_t nodes = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth || ++nodes > max_nodes) return false;
        break;
      case ',':
        if (++nodes > max_nodes) return false;
        break;
      case ']':
      case '}':
        // Unbalanced closers make the document invalid; the parser says so.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace credsync
